"""``hvdjob smoke job.yaml``: run any job briefly on this machine and check that it trains.

Meant for CI: one verdict line per check (PASS, FAIL or SKIP with the reason), ``--junit FILE``
for the CI's test report, ``--json`` for tools, and exit code 1 when any check failed (2 for bad
input, as every command).
"""
from __future__ import annotations

import os
import socket
import sys
import time
from typing import Optional, Tuple

import click

from hvdrun_cli.cli.common import clean_errors, echo_json
from hvdrun_cli.cli.spec_options import overrides_from_flags, set_option
from hvdrun_cli.errors import Problem, UserInputError
from hvdrun_cli.files import write_text_atomic
from hvdrun_cli.smoke.junit import render_junit
from hvdrun_cli.smoke.runner import DEFAULT_STEPS, DEFAULT_TIME_LIMIT_S, SmokeOptions, SmokeReport, run_smoke

EXIT_CHECK_FAILED = 1


@click.command("smoke")
@click.argument("spec_path", metavar="JOB.yaml")
@click.option("--steps", type=click.IntRange(min=4), default=DEFAULT_STEPS, show_default=True,
              help="Training steps in all (managed training); the first launch stops half way, the second resumes.")
@click.option("--time-limit", "time_limit", type=click.IntRange(min=1), default=DEFAULT_TIME_LIMIT_S,
              show_default=True, metavar="SECONDS",
              help="Wall-clock limit for the whole smoke run; when reached the job is stopped and 'runs' fails.")
@click.option("--np", "np", type=click.IntRange(min=1), default=None,
              help="Ranks to start (default: one per GPU, or 2 CPU ranks over Gloo without one).")
@set_option()
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Also write the verdicts as JUnit XML (one testcase per check) for the CI's test report.")
@click.option("--json", "as_json", is_flag=True, help="Print the verdicts as JSON on stdout (verdict lines go to stderr).")
@click.option("--work-dir", type=click.Path(file_okay=False), default=None,
              help="Put run directories and checkpoints here (new or empty) and keep them. "
                   "Default: a temporary directory, removed unless a check fails.")
@click.option("--keep", is_flag=True, help="Keep the temporary work directory even when every check passes.")
@click.option("-v", "--verbose", is_flag=True, help="Show the ranks' output live (it is always kept in rank.N.log).")
@clean_errors
def smoke(spec_path: str, steps: int, time_limit: int, np: Optional[int], set_options: Tuple[str, ...],
          junit_path: Optional[str], as_json: bool, work_dir: Optional[str], keep: bool, verbose: bool) -> None:
    """Run the job briefly on this machine and check it trains: exits 0, finite and falling loss,
    identical parameters on all ranks, and a checkpoint that resumes.

    Any spec works, also one written for a cluster: hosts, hostfile, elastic and Slurm settings are
    dropped and the job runs here with one rank per GPU (2 CPU ranks over Gloo without a GPU).
    """
    _check_junit_path(junit_path)
    options = SmokeOptions(spec_path=spec_path, steps=steps, time_limit_s=time_limit, np=np,
                           overrides=tuple(overrides_from_flags(set_options)), work_dir=work_dir, keep=keep,
                           echo=verbose)
    report = run_smoke(options, terminal=sys.stderr)
    for line in _verdict_lines(report):
        click.echo(line, err=as_json)
    if junit_path:
        write_text_atomic(junit_path, render_junit(
            suite=f"hvdjob smoke {report.job}", classname=f"hvdjob.smoke.{report.job}", verdicts=report.verdicts,
            time_s=report.wall_time_s, properties=_properties(report),
            timestamp=time.strftime("%Y-%m-%dT%H:%M:%S"), hostname=socket.gethostname()))
    if as_json:
        echo_json(report.to_dict())
    if not report.ok:
        sys.exit(EXIT_CHECK_FAILED)


def _verdict_lines(report: SmokeReport) -> Tuple[str, ...]:
    counts = report.counts()
    total = (f"hvdjob smoke: {report.job}: {'PASSED' if report.ok else 'FAILED'}: {counts['pass']} passed, "
             f"{counts['fail']} failed, {counts['skip']} skipped in {report.wall_time_s:.1f} s")
    kept = (f"hvdjob smoke: run directories and checkpoints kept in {report.work_dir}",) if report.work_dir_kept else ()
    return (*(v.render() for v in report.verdicts), total, *kept)


def _properties(report: SmokeReport) -> dict:
    props = {"spec": report.spec_path, "mode": report.mode, "np": str(report.box.np), "device": report.box.device,
             "box": report.box.reason}
    if report.steps is not None:
        props["steps"] = str(report.steps)
        props["resume_step"] = str(report.resume_step)
    if report.work_dir_kept:
        props["work_dir"] = report.work_dir
    return props


def _check_junit_path(path: Optional[str]) -> None:
    """Fail before launching anything when the report could not be written."""
    if path is None:
        return
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        raise UserInputError(Problem(f"cannot write the report: {parent} is not a writable directory",
                                     key="--junit", got=path))


