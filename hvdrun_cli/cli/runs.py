"""``hvdjob runs``: a table of past runs under the run root, newest first (``--json`` too)."""
from __future__ import annotations

import os
from typing import List, Optional, Tuple

import click

from hvdrun_cli.cli.common import clean_errors, echo_json
from hvdrun_cli.report.runs import RunRow, list_runs

HEADERS = ("NAME", "RUN ID", "STARTED", "STATUS", "EXIT", "STEPS", "BEST VAL ACC", "WALL", "LOGS")


def _cells(row: RunRow) -> Tuple[str, ...]:
    run_id = row.run_id if not row.slurm_job_id or row.run_id.startswith("slurm-") else \
        f"{row.run_id} (slurm {row.slurm_job_id})"
    return (
        row.name, run_id, (row.started or "").replace("T", " "), row.status,
        "" if row.exit_code is None else str(row.exit_code), "" if row.steps is None else str(row.steps),
        "" if row.best_val_accuracy is None else f"{row.best_val_accuracy:.4f}",
        "" if row.wall_time_s is None else f"{row.wall_time_s:.1f}s", _short(row.logs),
    )


def _short(path: str) -> str:
    """Paths under the current directory are shown relative to it."""
    rel = os.path.relpath(path)
    return rel if not rel.startswith("..") else path


@click.command("runs")
@click.argument("names", nargs=-1, metavar="[JOB_NAME]...")
@click.option("--run-root", default="runs", show_default=True, type=click.Path(file_okay=False),
              help="The spec's run_root, where runs are kept.")
@click.option("-n", "--last", type=click.IntRange(min=1), default=None, help="Show only the N newest runs.")
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
@clean_errors
def runs(names: Tuple[str, ...], run_root: str, last: Optional[int], as_json: bool) -> None:
    """List past runs (local and Slurm) under the run root, newest first."""
    rows = list_runs(run_root, names)[:last] if last else list_runs(run_root, names)
    if as_json:
        echo_json([row.to_dict() for row in rows])
        return
    if not rows:
        click.echo(f"no runs under {os.path.abspath(run_root)}")
        return
    table: List[Tuple[str, ...]] = [HEADERS] + [_cells(row) for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADERS))]
    for line in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())
