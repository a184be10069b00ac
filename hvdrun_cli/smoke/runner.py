"""A whole smoke run: load and rewrite the spec, launch it (twice for managed training), judge.

Managed training runs as two launches sharing one checkpoint directory: the first stops at half
the steps (``train.max_steps``), the second resumes from its checkpoint and runs to ``--steps``.
Together they cover the full run for the loss checks, the second one's end for the parameter
check, and the pair is the checkpoint round trip. Script-mode specs run once, unchanged.

The work directory holds both run directories and the checkpoints. By default it is a new
temporary directory, removed after a run with no failed check and kept (and named) otherwise, so
CI logs point at the rank logs of a failure.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, TextIO, Tuple

from hvdrun_cli.errors import Problem, UserInputError
from hvdrun_cli.launch.tools import probe_tools
from hvdrun_cli.smoke.box import BoxShape, probe_box
from hvdrun_cli.smoke.evidence import dump_dir_of
from hvdrun_cli.smoke.judge import judge_managed, judge_script
from hvdrun_cli.smoke.launch import run_launch
from hvdrun_cli.smoke.model import FAIL, PASS, SKIP, LaunchOutcome, Verdict
from hvdrun_cli.smoke.rewrite import box_overrides, for_this_box, launch_spec, log_interval_for, resume_step_for
from hvdrun_cli.scriptjob.files import load_spec_file
from hvdrun_cli.spec import Override
from hvdrun_cli.spec.model import JobSpec

DEFAULT_STEPS = 20
DEFAULT_TIME_LIMIT_S = 300


@dataclass(frozen=True)
class SmokeOptions:
    """The command line of ``hvdjob smoke``, typed."""

    spec_path: str
    steps: int = DEFAULT_STEPS
    time_limit_s: float = DEFAULT_TIME_LIMIT_S
    np: Optional[int] = None
    overrides: Tuple[Override, ...] = ()  # the user's --set options, applied before the box's
    work_dir: Optional[str] = None  # None: a temporary directory
    keep: bool = False  # keep the temporary work directory even when every check passed
    echo: bool = False  # show rank output live


@dataclass(frozen=True)
class LaunchStep:
    """One planned launch: its label, run directory name and step budget (None: script mode)."""

    label: str
    name: str
    max_steps: Optional[int] = None


@dataclass(frozen=True)
class SmokeReport:
    job: str
    spec_path: str
    mode: str  # "managed" | "script"
    box: BoxShape
    steps: Optional[int]
    resume_step: Optional[int]
    time_limit_s: float
    work_dir: str
    work_dir_kept: bool
    outcomes: Tuple[LaunchOutcome, ...]
    verdicts: Tuple[Verdict, ...]
    wall_time_s: float
    notes: Tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """No check failed (skipped checks are reported, but do not fail the run)."""
        return all(v.status != FAIL for v in self.verdicts)

    def counts(self) -> Dict[str, int]:
        return {status: sum(v.status == status for v in self.verdicts) for status in (PASS, FAIL, SKIP)}

    def to_dict(self) -> Dict[str, Any]:
        return {
            "job": self.job, "spec": self.spec_path, "mode": self.mode, "ok": self.ok,
            "np": self.box.np, "device": self.box.device, "box": self.box.reason,
            "steps": self.steps, "resume_step": self.resume_step, "time_limit_s": self.time_limit_s,
            "wall_time_s": round(self.wall_time_s, 3), "work_dir": self.work_dir if self.work_dir_kept else None,
            "counts": self.counts(), "launches": [o.to_dict() for o in self.outcomes],
            "checks": [v.to_dict() for v in self.verdicts], "notes": list(self.notes),
        }


def plan_steps(spec: JobSpec, steps: int) -> Tuple[LaunchStep, ...]:
    """Two launches (stop half way, then resume) for managed training; one for a script."""
    if not spec.managed:
        return (LaunchStep("the script launch", "launch-1"),)
    half = resume_step_for(steps)
    return (LaunchStep(f"launch 1 of 2 (steps 0-{half})", "launch-1", half),
            LaunchStep(f"launch 2 of 2 (resume, steps {half}-{steps})", "launch-2", steps))


def _work_dir(explicit: Optional[str]) -> Tuple[str, bool]:
    """(directory, whether the user named it); a temporary one is created here, a named one later.

    A named directory must be new or empty: old checkpoints in it would be resumed and hide a
    first launch that saved none.
    """
    if explicit is None:
        return tempfile.mkdtemp(prefix="hvdjob-smoke-"), False
    path = os.path.abspath(explicit)
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise UserInputError(Problem("must be an empty directory or not exist yet (a previous smoke run's "
                                     "checkpoints would be resumed)", key="--work-dir", got=explicit))
    return path, True


def _say(terminal: TextIO, text: str) -> None:
    terminal.write(f"hvdjob smoke: {text}\n")
    terminal.flush()


def run_smoke(options: SmokeOptions, terminal: TextIO) -> SmokeReport:
    """Run the smoke test described by ``options``; progress goes to ``terminal``.

    Raises :class:`UserInputError` (bad spec or flags) before anything is launched or left behind.
    """
    started = time.monotonic()
    box = probe_box(os.environ, options.np)
    work_dir, named = _work_dir(options.work_dir)
    try:
        spec = for_this_box(load_spec_file(options.spec_path, [*options.overrides, *box_overrides(box, work_dir)]))
    except BaseException:
        if not named:
            shutil.rmtree(work_dir, ignore_errors=True)
        raise
    os.makedirs(work_dir, exist_ok=True)
    plan = plan_steps(spec, options.steps)
    notes = _notes(spec, options)
    _say(terminal, f"{spec.name}: {box.describe()}; {_what(spec, options.steps)}; limit {options.time_limit_s:g} s; "
                   f"files in {work_dir}")
    for note in notes:
        _say(terminal, note)

    outcomes = _launch_all(spec, plan, options, work_dir, started, terminal)
    if spec.managed:
        verdicts = judge_managed(outcomes, box.np, resume_step_for(options.steps), options.time_limit_s)
    else:
        verdicts = judge_script(outcomes, box.np, options.time_limit_s)
    failed = any(v.status == FAIL for v in verdicts)
    kept = named or options.keep or failed
    if not kept:
        shutil.rmtree(work_dir, ignore_errors=True)
    return SmokeReport(
        job=spec.name, spec_path=options.spec_path, mode="managed" if spec.managed else "script", box=box,
        steps=options.steps if spec.managed else None,
        resume_step=resume_step_for(options.steps) if spec.managed else None,
        time_limit_s=options.time_limit_s, work_dir=work_dir, work_dir_kept=kept, outcomes=tuple(outcomes),
        verdicts=tuple(verdicts), wall_time_s=time.monotonic() - started, notes=notes,
    )


def _launch_all(spec: JobSpec, plan: Sequence[LaunchStep], options: SmokeOptions, work_dir: str, started: float,
                terminal: TextIO) -> List[LaunchOutcome]:
    """Run the planned launches in order, sharing one deadline; stop after the first that fails."""
    tools = probe_tools(need_mpi_flavour=False)
    deadline = started + options.time_limit_s
    interval = log_interval_for(options.steps)
    outcomes: List[LaunchOutcome] = []
    for step in plan:
        run_dir = os.path.join(work_dir, step.name)
        one = launch_spec(spec, dump_dir_of(run_dir), step.max_steps, interval if step.max_steps else None)
        _say(terminal, f"{step.label}: {one.resources.np} ranks, logs in {run_dir}")
        outcome = run_launch(one, tools, run_dir, step.label, deadline, terminal, echo=options.echo)
        outcomes.append(outcome)
        if not outcome.ok:
            break
    return outcomes


def _what(spec: JobSpec, steps: int) -> str:
    if spec.managed:
        return f"{steps} steps, stopping at step {resume_step_for(steps)} to check the resume"
    return "script mode: the script runs once with its own arguments"


def _notes(spec: JobSpec, options: SmokeOptions) -> Tuple[str, ...]:
    if not spec.managed and options.steps != DEFAULT_STEPS:
        return ("--steps does not apply to script mode (the script decides how long it trains)",)
    return ()
