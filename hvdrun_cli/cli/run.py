"""``hvdjob run job.yaml`` or ``hvdjob run --np 2 train.py ARGS``: plan the launch, print it (--dry-run) or run it."""
from __future__ import annotations

import contextlib
import sys
from typing import Optional, Tuple

import click

from hvdrun_cli.cli.common import clean_errors, echo_json
from hvdrun_cli.cli.spec_options import SpecFlags, spec_options
from hvdrun_cli.cli.terminal_options import check_rank_selection, rank_selection_option
from hvdrun_cli.cli.target import ScriptFlags, SpecOrScriptCommand, load_job, script_options, target_argument
from hvdrun_cli.errors import JobFailed, Problem, UserInputError
from hvdrun_cli.launch.progress_view import DEFAULT_PLAIN_EVERY_S, progress_view
from hvdrun_cli.launch.runner import Launch, RunOptions
from hvdrun_cli.launch.terminal import TerminalOptions


@click.command("run", cls=SpecOrScriptCommand)
@target_argument
@spec_options
@script_options
@click.option("--dry-run", is_flag=True, help="Print the launch plan (argv, env, rank layout) and stop.")
@click.option("--json", "as_json", is_flag=True, help="With --dry-run: print the plan as JSON.")
@click.option("--run-dir", type=click.Path(file_okay=False), help="Use this run directory instead of runs/<name>/<id>.")
@click.option("--max-restarts", type=click.IntRange(min=0), default=None, help="Relaunch up to N times when a rank dies (overrides restarts:).")
@click.option("--progress-timeout", type=click.IntRange(min=1), default=None, help="Stop the job, naming the stalled ranks, when ranks make no progress for N seconds.")
@click.option("-q", "--quiet", is_flag=True, help="Do not echo rank output (it is still kept in the run directory).")
@rank_selection_option
@click.option("--fold/--no-fold", default=None, help="Show identical lines of several ranks once, as [0-7] text (default: on from 4 ranks).")
@click.option("--verbose", is_flag=True, help="Print the launch plan (as --dry-run shows it) before starting the ranks.")
@click.option("--progress", "progress_mode", type=click.Choice(["auto", "bar", "plain", "off"]), default="auto",
              show_default=True, help="Job progress: a live bar on a terminal, a plain line every "
              "--progress-every seconds otherwise (auto), or always one of them, or none.")
@click.option("--progress-every", type=click.FloatRange(min=0.5), default=DEFAULT_PLAIN_EVERY_S, show_default=True,
              metavar="SECONDS", help="Seconds between plain progress lines.")
@clean_errors
def run(
    target: Tuple[str, ...],
    dry_run: bool,
    as_json: bool,
    run_dir: Optional[str],
    max_restarts: Optional[int],
    progress_timeout: Optional[int],
    quiet: bool,
    verbose: bool,
    progress_mode: str,
    progress_every: float,
    ranks: Optional[frozenset],
    fold: Optional[bool],
    spec_flags: SpecFlags,
    script_flags: ScriptFlags,
) -> None:
    """Launch the job's ranks now: local Gloo, mpirun over hosts, or srun inside a Slurm allocation.

    Give a job spec (JOB.yaml), or a Horovod training script with its arguments: options before
    the script are hvdjob's, everything after it is the script's, and its framework is read from
    its imports (or --framework). 'hvdjob run --np 2 -- python train.py ARGS' works too.
    """
    if as_json and not dry_run:
        raise UserInputError(Problem("only works with --dry-run, where it prints the plan as JSON; a run's outcome "
                                     "is written to result.json in its run directory", key="--json"))
    job = load_job(target, spec_flags, script_flags)
    spec = job.spec
    if job.script_job is not None:
        click.echo(f"hvdjob: {job.script_job.script}: {spec.framework} script job, framework "
                   f"{job.script_job.framework_source}", err=True)
    if job.saved_spec:
        click.echo(f"hvdjob: wrote {job.saved_spec}; next time: hvdjob run {job.saved_spec}", err=True)
    launch = Launch(spec, run_dir=run_dir)  # bad hosts/layout fail here, before any file exists
    check_rank_selection(ranks, launch.plan.np)
    if dry_run:
        if as_json:
            echo_json(launch.plan.to_dict())
        else:
            click.echo(launch.plan.render_text())
        return
    if verbose:
        click.echo(launch.plan.render_text(), err=True)
    view = progress_view(launch.plan.np, progress_mode, progress_every)
    with view or contextlib.nullcontext():
        outcome = launch.run(
            RunOptions(max_restarts=max_restarts, progress_timeout_s=progress_timeout, quiet=quiet,
                       terminal=sys.stdout,  # inside the view: its console when it draws a bar
                       observers=(view.observe,) if view else (), view=TerminalOptions(ranks, fold)),
            on_started=lambda directory: click.echo(f"hvdjob: {spec.name}: run directory {directory}", err=True),
        )
    result = outcome.result
    if not result.ok:
        raise JobFailed("\n".join(result.report_lines()), exit_code=result.exit_code)
    click.echo(f"hvdjob: {spec.name}: finished in {result.wall_time_s:.1f} s; logs in {outcome.run_dir}", err=True)
