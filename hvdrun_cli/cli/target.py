"""What ``run`` and ``submit`` are asked to launch: a job spec, or a script with its arguments.

    hvdjob run job.yaml --np 2                  a spec; hvdjob's options may come before or after it
    hvdjob run --np 2 train.py --epochs 5       a script; everything after it is the script's
    hvdjob run --np 2 -- python train.py ...    the same, spelled as for horovodrun

:class:`SpecOrScriptCommand` decides which form a command line has before click parses it, and
:func:`load_job` turns either into a validated :class:`JobSpec` (``--save-spec`` writing the
script form's equivalent spec file).
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple, TypeVar

import click
from click.shell_completion import CompletionItem

from hvdrun_cli.cli.checked_spec import load_checked
from hvdrun_cli.cli.spec_options import SpecFlags
from hvdrun_cli.errors import Problem, UserInputError
from hvdrun_cli.files import write_text_atomic
from hvdrun_cli.scriptjob.document import ScriptJob, load_script_spec, overridden_values, script_job, spec_text
from hvdrun_cli.scriptjob.files import SPEC_SUFFIXES, is_python_command, is_python_script
from hvdrun_cli.spec import load_spec
from hvdrun_cli.spec.model import FRAMEWORKS, JobSpec

F = TypeVar("F", bound=Callable[..., Any])

TARGET_METAVAR = "JOB.yaml | SCRIPT.py [SCRIPT ARGS]..."
# hvdjob options a user may put after the script by habit; they reach the script, so say so.
_LAUNCH_FLAGS = ("--np", "-np", "--nproc-per-node", "-H", "--hosts", "--hostfile", "--launcher", "--dry-run",
                 "--framework", "--save-spec")
_IGNORED_PYTHON_FLAGS = ("-u",)  # rank output is unbuffered already


@dataclass(frozen=True)
class Target:
    """A spec path, or a script with its arguments."""

    spec_path: Optional[str] = None
    script: Optional[str] = None
    args: Tuple[str, ...] = ()


def looks_like_script(token: str) -> bool:
    """Whether a command line's first argument starts the script form."""
    if token.endswith(SPEC_SUFFIXES):
        return False
    return is_python_command(token) or is_python_script(token)


def parse_target(tokens: Sequence[str]) -> Target:
    """``("job.yaml",)``, ``("train.py", "--lr", "1")`` or ``("python", "train.py", ...)`` as a :class:`Target`."""
    if not tokens:
        raise click.UsageError("missing JOB.yaml or SCRIPT.py")
    first, rest = tokens[0], list(tokens[1:])
    if is_python_command(first):
        while rest and rest[0] in _IGNORED_PYTHON_FLAGS:
            rest.pop(0)
        if not rest or rest[0].startswith("-"):
            got = f" (got {rest[0]!r})" if rest else ""
            raise UserInputError(Problem(f"give the script to run after {first}, e.g. '-- {first} train.py "
                                         f"ARGS'; hvdjob runs a script file with its own Python{got}"))
        return Target(script=rest[0], args=tuple(rest[1:]))
    if looks_like_script(first):
        return Target(script=first, args=tuple(rest))
    if rest:
        raise click.UsageError(f"unexpected arguments after {first}: {' '.join(rest)} (a script's arguments "
                               "follow the script: hvdjob run [OPTIONS] SCRIPT.py [SCRIPT ARGS]...)")
    return Target(spec_path=first)


class SpecOrScriptCommand(click.Command):
    """A command whose positional is a spec or a script: options after a script are the script's."""

    def parse_args(self, ctx: click.Context, args: List[str]) -> List[str]:
        first = _first_positional(self, ctx, args)
        ctx.allow_interspersed_args = first is None or not looks_like_script(args[first])
        return super().parse_args(ctx, args)


def _first_positional(command: click.Command, ctx: click.Context, args: Sequence[str]) -> Optional[int]:
    """Index of the first argument that is not an option or an option's value."""
    takes_value = set()
    for param in command.get_params(ctx):
        if isinstance(param, click.Option) and not param.is_flag and not param.count:
            takes_value.update(param.opts + param.secondary_opts)
    i = 0
    while i < len(args):
        token = args[i]
        if token == "--":
            return i + 1 if i + 1 < len(args) else None
        if token.startswith("-") and len(token) > 1:
            i += 2 if token in takes_value else 1
            continue
        return i
    return None


def _complete_target(ctx: click.Context, param: click.Parameter, incomplete: str) -> List[CompletionItem]:
    return [CompletionItem(incomplete, type="file")]


def target_argument(func: F) -> F:
    return click.argument("target", nargs=-1, type=click.UNPROCESSED, required=True, metavar=TARGET_METAVAR,
                          shell_complete=_complete_target)(func)


@dataclass(frozen=True)
class ScriptFlags:
    framework: Optional[str] = None
    save_spec: Optional[str] = None


def script_options(func: F) -> F:
    """``--framework`` and ``--save-spec`` for the script form; the command receives ``script_flags``."""

    @functools.wraps(func)
    def wrapper(*args: Any, framework: Optional[str], save_spec: Optional[str], **kwargs: Any) -> Any:
        return func(*args, script_flags=ScriptFlags(framework, save_spec), **kwargs)

    wrapper = click.option("--save-spec", "save_spec", type=click.Path(dir_okay=False), metavar="FILE",
                           help="Script form: also write the equivalent job spec to FILE (new), for later "
                                "runs, review and submit.")(wrapper)
    wrapper = click.option("--framework", "framework", type=click.Choice(FRAMEWORKS), default=None,
                           help="Script form: the script's framework (default: read from its imports).")(wrapper)
    return wrapper  # type: ignore[return-value]


@dataclass(frozen=True)
class Job:
    """What to launch: the validated spec, and the script job when it came from the command line."""

    spec: JobSpec
    script_job: Optional[ScriptJob] = None
    saved_spec: Optional[str] = None  # where --save-spec wrote it


def load_job(tokens: Sequence[str], spec_flags: SpecFlags, script_flags: ScriptFlags, command: str = "run") -> Job:
    """The job a command line names; every problem is a :class:`UserInputError` (exit 2).

    ``command`` (run, submit) is quoted in the comment of a spec written by ``--save-spec``.
    """
    target = parse_target(tokens)
    if target.spec_path is not None:
        for flag, value in (("--framework", script_flags.framework), ("--save-spec", script_flags.save_spec)):
            if value is not None:
                raise UserInputError(Problem(f"only applies to a script run (SCRIPT.py [ARGS]); {target.spec_path} "
                                             "is a spec already", key=flag))
        # Every input problem at once (spec, flags, hosts, layout); submit leaves this shell's Slurm/PBS
        # allocation out (the job reads its own) and checks the sbatch options instead.
        checks = {"allocation": False, "sbatch": True} if command == "submit" else {}
        return Job(load_checked(target.spec_path, spec_flags, **checks).spec)
    assert target.script is not None
    job = script_job(target.script, target.args, script_flags.framework)
    _note_misplaced_flags(job)
    overrides = spec_flags.overrides()
    spec = load_script_spec(job, overrides)
    saved = None
    if script_flags.save_spec:
        argv = ["hvdjob", command, *spec_flags.argv(), "--save-spec", script_flags.save_spec]
        if script_flags.framework:
            argv += ["--framework", script_flags.framework]
        saved = save_spec(job, spec, overrides, script_flags.save_spec, [*argv, job.script, *job.args])
    return Job(spec, job, saved)


def save_spec(job: ScriptJob, spec: JobSpec, overrides: Sequence[Any], path: str, command: Sequence[str]) -> str:
    """Write the job's equivalent spec to a new file at ``path``; returns the path."""
    if os.path.exists(path):
        raise UserInputError(Problem("already exists; give a new file name (hvdjob does not overwrite a spec)",
                                     file=path, key="--save-spec"))
    spec_dir = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(spec_dir):
        raise UserInputError(Problem(f"directory {spec_dir} does not exist", file=path, key="--save-spec"))
    text = spec_text(job, spec_dir, overridden_values(spec, overrides, spec_dir), command=command,
                     file_name=path)
    write_text_atomic(path, text)
    load_spec(path)  # what was written must load: a bug here is better found now than on the next run
    return path


def _note_misplaced_flags(job: ScriptJob) -> None:
    """hvdjob options after the script belong to the script; say so once, the run goes on."""
    misplaced = [a for a in job.args if a.split("=", 1)[0] in _LAUNCH_FLAGS]
    if misplaced:
        click.echo(f"hvdjob: note: {', '.join(misplaced)} after {job.script} go to the script; hvdjob's own options "
                   f"come before it (hvdjob run --np 2 {job.script} ...)", err=True)
