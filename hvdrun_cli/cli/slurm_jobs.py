"""``hvdjob status``, ``hvdjob logs`` and ``hvdjob cancel``: follow jobs sent with ``hvdjob submit``.

Without job ids, ``status`` shows the jobs submitted from the current directory (recorded by
``submit`` in ``<run_root>/.slurm_jobs.jsonl``). A job's state comes from squeue while slurmctld
remembers it, then from sacct when the cluster keeps accounting; a job neither knows is ``GONE``.
"""
from __future__ import annotations

import functools
import os
import re
import sys
import time
from typing import Any, BinaryIO, Callable, Dict, List, Sequence, Tuple, TypeVar

import click

from hvdrun_cli.cli.common import clean_errors, echo_json
from hvdrun_cli.errors import LaunchError, Problem, UserInputError
from hvdrun_cli.slurm import records
from hvdrun_cli.slurm.client import JobState, SlurmClient

GONE = "GONE"  # neither squeue nor sacct knows the job any more
# What every Slurm client tool says, after several lines of DNS errors, when it finds no slurm.conf,
# no SLURM_CONF and no configless DNS record: there is no cluster to talk to.
_NO_CONFIGURATION = "Could not establish a configuration source"
F = TypeVar("F", bound=Callable[..., Any])


def no_cluster_in_one_line(command: str) -> Callable[[F], F]:
    """Turn the tools' multi-line "no configuration" failure into one line saying what it means."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except LaunchError as exc:
                if _NO_CONFIGURATION in str(exc):
                    raise LaunchError(f"{command} needs a Slurm cluster, and none is configured on this machine "
                                      "(no slurm.conf, SLURM_CONF not set)") from None
                raise

        return wrapper  # type: ignore[return-value]

    return decorate
_JOB_ID = re.compile(r"^\d+(_\d+)?$")
_FOLLOW_INTERVAL = 0.5
_STATE_INTERVAL = 2.0

run_root_option = click.option(
    "--run-root",
    default="runs",
    show_default=True,
    type=click.Path(file_okay=False),
    help="The spec's run_root, where hvdjob submit records the jobs it submitted.",
)


@click.command("status")
@click.argument("job_ids", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the jobs as JSON.")
@run_root_option
@clean_errors
def status(job_ids: Tuple[str, ...], as_json: bool, run_root: str) -> None:
    """Show the state of JOB_IDS (default: the jobs submitted from this directory)."""
    if not as_json:
        _status(job_ids, False, run_root)
        return
    try:  # --json: JSON on stdout whatever happens, the error too (and its exit code)
        _status(job_ids, True, run_root)
    except UserInputError as exc:
        echo_json({"error": "; ".join(str(p) for p in exc.problems), "jobs": []})
        sys.exit(exc.exit_code)
    except LaunchError as exc:
        echo_json({"error": str(exc), "jobs": []})
        sys.exit(exc.exit_code)


@no_cluster_in_one_line("status")
def _status(job_ids: Tuple[str, ...], as_json: bool, run_root: str) -> None:
    _check_ids(job_ids)
    client = SlurmClient("status")
    client.require("squeue")
    submitted = {s.job_id: s for s in records.load(run_root) if s.cwd == os.getcwd()}
    ids = list(job_ids) or list(submitted)
    if not ids:
        if as_json:
            echo_json([])
        else:
            click.echo(f"no jobs submitted from {os.getcwd()} (looked in {records.records_path(run_root)})")
        return
    states = job_states(client, ids)
    rows = []
    for job_id in ids:
        state = states[job_id]
        record = submitted.get(job_id) or records.find(run_root, job_id)
        rows.append(
            {
                "job_id": job_id,
                "name": state.name or (record.name if record else ""),
                "state": state.state,
                "elapsed": state.elapsed,
                "where": state.where,
                "exit_code": state.exit_code,
                "source": state.source,
                "output": record.output if record else None,
            }
        )
    if as_json:
        echo_json(rows)
        return
    _print_table(rows)


def job_states(client: SlurmClient, ids: Sequence[str]) -> Dict[str, JobState]:
    """Every id's state: squeue first, sacct for the ones slurmctld forgot, else GONE."""
    states = client.queue(ids)
    missing = [i for i in ids if i not in states]
    states.update(client.accounting(missing))
    for job_id in ids:
        states.setdefault(job_id, JobState(job_id, GONE, source="none"))
    return states


def _print_table(rows: List[Dict[str, object]]) -> None:
    headers = ("JOBID", "NAME", "STATE", "ELAPSED", "NODES/REASON")
    keys = ("job_id", "name", "state", "elapsed", "where")
    table = [headers] + [tuple(str(row[k] or "") for k in keys) for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(headers))]
    for line in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())
    if any(row["state"] == GONE for row in rows):
        click.echo(f"{GONE}: Slurm no longer lists the job (finished a while ago) and keeps no accounting here.")


@click.command("logs")
@click.argument("job_id")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new output until the job ends.")
@click.option("--stderr", is_flag=True, help="Show the job's stderr file instead of its stdout.")
@run_root_option
@clean_errors
@no_cluster_in_one_line("logs")
def logs(job_id: str, follow: bool, stderr: bool, run_root: str) -> None:
    """Print the output of a submitted Slurm job."""
    _check_ids([job_id])
    client = SlurmClient("logs")
    path = _log_path(client, run_root, job_id, "error" if stderr else "output")
    if not follow:
        if not os.path.exists(path):
            raise LaunchError(f"job {job_id} has no output yet; it will be written to {path}")
        with open(path, "rb") as fh:
            _copy(fh)
        return
    try:
        _follow(client, job_id, path)
    except KeyboardInterrupt:
        pass


def _log_path(client: SlurmClient, run_root: str, job_id: str, which: str) -> str:
    """The job's stdout/stderr file: from hvdjob's record, else from ``scontrol show job``."""
    record = records.find(run_root, job_id)
    if record is not None:
        return record.output if which == "output" else record.error
    fields = client.show_job(job_id)
    if fields is None:
        raise LaunchError(
            f"job {job_id}: not in {records.records_path(run_root)} and unknown to Slurm "
            "(give --run-root if the spec sets run_root)"
        )
    path = fields.get("StdOut" if which == "output" else "StdErr", "")
    if not path:
        raise LaunchError(f"job {job_id}: Slurm does not say where its output goes")
    return path


def _follow(client: SlurmClient, job_id: str, path: str) -> None:
    """Print the file as it grows; stop once the job is finished and everything is printed."""
    client.require("squeue")
    position = 0
    next_check = 0.0
    finished = False
    while True:
        if os.path.exists(path):
            with open(path, "rb") as fh:
                fh.seek(position)
                position += _copy(fh)
        if finished:
            return
        if time.monotonic() >= next_check:
            state = job_states(client, [job_id])[job_id]
            finished = state.finished or state.state == GONE  # one more read, then stop
            next_check = time.monotonic() + _STATE_INTERVAL
        if not finished:
            time.sleep(_FOLLOW_INTERVAL)


def _copy(fh: BinaryIO) -> int:
    """Copy the rest of ``fh`` to stdout; returns the number of bytes copied."""
    data = fh.read()
    if data:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)  # bytes as written: a log may hold any encoding
        sys.stdout.buffer.flush()
    return len(data)


@click.command("cancel")
@click.argument("job_ids", nargs=-1, required=True)
@clean_errors
@no_cluster_in_one_line("cancel")
def cancel(job_ids: Tuple[str, ...]) -> None:
    """Cancel submitted Slurm jobs (scancel)."""
    _check_ids(job_ids)
    client = SlurmClient("cancel")
    client.require("scancel")
    states = client.queue(job_ids)
    unknown = [i for i in job_ids if i not in states]
    if unknown:
        raise LaunchError(f"Slurm does not know job {', '.join(unknown)}: nothing cancelled")
    for job_id in job_ids:
        state = states[job_id]
        if state.finished:
            click.echo(f"job {job_id} already ended ({state.state}); nothing to cancel")
            continue
        client.cancel(job_id)
        click.echo(f"cancelled job {job_id} (was {state.state})")


def _check_ids(job_ids: Sequence[str]) -> None:
    bad = [Problem("is not a Slurm job id (digits, or 123_4 for an array task)", key="JOBID", got=i)
           for i in job_ids if not _JOB_ID.match(i)]
    if bad:
        raise UserInputError(bad)
