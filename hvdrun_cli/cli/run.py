"""``hvdjob run job.yaml``: build the launch plan, print it (--dry-run) or execute it."""
from __future__ import annotations

import os
import sys
from typing import Optional

import click

from hvdrun_cli.cli.common import clean_errors, echo_json
from hvdrun_cli.cli.spec_options import SpecFlags, spec_options
from hvdrun_cli.contract import PLAN_FILE
from hvdrun_cli.errors import JobFailed
from hvdrun_cli.launch.attempts import run_attempts
from hvdrun_cli.launch.plan import LaunchPlan
from hvdrun_cli.launch.planner import SPEC_JSON
from hvdrun_cli.launch.prepare import plan_here, write_result
from hvdrun_cli.files import write_json_atomic
from hvdrun_cli.launch.rundir import create_run_dir, new_run_id, planned_run_dir
from hvdrun_cli.preflight.gate import require_reachable_hosts
from hvdrun_cli.spec import load_spec


def checked(plan: LaunchPlan) -> LaunchPlan:
    """The plan, once every remote host it uses answers (a down host is named in seconds)."""
    require_reachable_hosts(plan)
    return plan


@click.command("run")
@click.argument("spec_path", metavar="JOB.yaml")
@spec_options
@click.option("--dry-run", is_flag=True, help="Print the launch plan (argv, env, rank layout) and stop.")
@click.option("--json", "as_json", is_flag=True, help="With --dry-run: print the plan as JSON.")
@click.option("--run-dir", type=click.Path(file_okay=False), help="Use this run directory instead of runs/<name>/<id>.")
@click.option("--max-restarts", type=click.IntRange(min=0), default=None, help="Relaunch up to N times when a rank dies (overrides restarts:).")
@click.option("--progress-timeout", type=click.IntRange(min=1), default=None, help="Stop the job, naming the stalled ranks, when ranks make no progress for N seconds.")
@click.option("-q", "--quiet", is_flag=True, help="Do not echo rank output (it is still kept in the run directory).")
@clean_errors
def run(
    spec_path: str,
    dry_run: bool,
    as_json: bool,
    run_dir: Optional[str],
    max_restarts: Optional[int],
    progress_timeout: Optional[int],
    quiet: bool,
    spec_flags: SpecFlags,
) -> None:
    """Launch the job's ranks now: local Gloo, mpirun over hosts, or srun inside a Slurm allocation."""
    spec = load_spec(spec_path, spec_flags.overrides())
    run_id = new_run_id()
    directory = planned_run_dir(spec, run_id, run_dir)
    first_plan = plan_here(spec, directory, run_id, attempt=0)  # bad hosts/layout fail before any file exists
    if dry_run:
        if as_json:
            echo_json(first_plan.to_dict())
        else:
            click.echo(first_plan.render_text())
        return

    require_reachable_hosts(first_plan)  # a down host is named in seconds, before any rank starts
    create_run_dir(directory)
    write_json_atomic(os.path.join(directory, SPEC_JSON), spec.to_dict())
    restarts = spec.restarts if max_restarts is None else max_restarts
    timeout = progress_timeout or spec.watchdog.progress_timeout_seconds

    def save_plan(plan: LaunchPlan) -> None:
        write_json_atomic(os.path.join(directory, PLAN_FILE), plan.to_dict())

    click.echo(f"hvdjob: {spec.name}: run directory {directory}", err=True)
    result = run_attempts(
        lambda attempt: first_plan if attempt == 0 else checked(plan_here(spec, directory, run_id, attempt)),
        max_restarts=restarts,
        terminal=sys.stdout,
        quiet=quiet,
        progress_timeout_s=timeout,
        on_plan=save_plan,
    )
    write_result(directory, result)
    if not result.ok:
        lines = [result.message] + [f"    {line}" for line in result.tail]
        raise JobFailed("\n".join(lines), exit_code=result.exit_code)
    click.echo(f"hvdjob: {spec.name}: finished in {result.wall_time_s:.1f} s; logs in {directory}", err=True)
