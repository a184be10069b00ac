"""``hvdjob report RUN_DIR``: one PNG of a run (curves and per-rank timing), or its numbers as JSON."""
from __future__ import annotations

import os
from typing import Optional

import click

from hvdrun_cli.cli.common import clean_errors, echo_json
from hvdrun_cli.errors import HvdjobError, Problem, UserInputError
from hvdrun_cli.report.analysis import report_numbers
from hvdrun_cli.report.plot import MatplotlibMissing, default_png_path, write_report_png
from hvdrun_cli.report.rundata import load_run


@click.command("report")
@click.argument("run_dir", metavar="RUN_DIR")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Where to write the PNG (default RUN_DIR/report.png).")
@click.option("--json", "as_json", is_flag=True, help="Print the report's numbers as JSON instead of drawing.")
@clean_errors
def report(run_dir: str, output: Optional[str], as_json: bool) -> None:
    """Draw a run: loss and accuracy per step, samples/s, each rank's step time and allreduce wait."""
    if not os.path.isdir(run_dir):
        raise UserInputError(Problem("not a run directory (no such directory)", file=run_dir))
    run = load_run(run_dir)
    if not run.has_any():
        raise UserInputError(Problem("not a run directory (no spec.json, metrics or results in it)", file=run_dir))
    numbers = report_numbers(run)
    if as_json:
        echo_json(numbers)
        return
    try:
        path = write_report_png(numbers, default_png_path(run.path, output))
    except MatplotlibMissing as exc:
        raise HvdjobError(str(exc)) from None
    click.echo(f"hvdjob: report of {run.name} written to {path}")
    if numbers["imbalance"]:
        click.echo(f"hvdjob: {numbers['imbalance']['text']}")
    elif run.timing and not numbers["allreduce_wait_recorded"]:
        click.echo("hvdjob: slowest rank: not recorded (this run did not measure each rank's allreduce wait)")
