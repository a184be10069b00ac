"""``hvdjob submit job.yaml``: render the job's sbatch script and hand it to Slurm.

The script is built first and only then saved and submitted, so ``--dry-run`` prints exactly what
``sbatch`` would receive (apart from the run directory's timestamp). Spec flags given here
(``--set``, ``--np`` ...) are repeated on the ``hvdjob run`` inside the script, so the job runs the
spec this command checked; the job starts in this directory (sbatch's default), where relative
flag values mean the same.
"""
from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from typing import List

import click

from hvdrun_cli.cli.checked_spec import load_checked
from hvdrun_cli.cli.common import clean_errors
from hvdrun_cli.cli.spec_options import SpecFlags, spec_options
from hvdrun_cli.slurm import records
from hvdrun_cli.slurm.client import SlurmClient
from hvdrun_cli.slurm.sbatch import ERROR_PATTERN, OUTPUT_PATTERN, render_sbatch
from hvdrun_cli.spec.model import JobSpec

SCRIPT_NAME = "job.sbatch"


@click.command("submit")
@click.argument("spec_file", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Print the sbatch script and stop (nothing is written or submitted).")
@spec_options
@clean_errors
def submit(spec_file: str, dry_run: bool, spec_flags: SpecFlags) -> None:
    """Render an sbatch script for SPEC_FILE and submit it with sbatch."""
    # Every input problem at once; the job reads its own allocation when it runs, not this shell's.
    spec = load_checked(spec_file, spec_flags, allocation=False, sbatch=True).spec
    spec_path = os.path.abspath(spec_file)
    forwarded = forwarded_flags(spec_flags)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    planned_dir = os.path.join(spec.run_root, spec.name, "slurm", stamp)
    script = render_sbatch(spec, spec_path, forwarded, planned_dir, sys.executable)
    if dry_run:
        click.echo(script, nl=False)
        return
    client = SlurmClient("submit")
    client.require("sbatch")
    run_dir = _fresh_dir(planned_dir)
    if run_dir != planned_dir:  # another submit of this job took the directory this second
        script = render_sbatch(spec, spec_path, forwarded, run_dir, sys.executable)
    script_path = os.path.join(run_dir, SCRIPT_NAME)
    with open(script_path, "w", encoding="utf-8") as fh:
        fh.write(script)
    job_id = client.submit(script_path)
    submission = _record(spec, spec_path, script_path, run_dir, job_id)
    click.echo(f"submitted job {job_id} ({spec.name})")
    click.echo(f"  script: {script_path}")
    click.echo(f"  output: {submission.output}")
    click.echo(f"  errors: {submission.error}")
    click.echo(f"  follow: hvdjob logs {job_id} -f")


def forwarded_flags(flags: SpecFlags) -> List[str]:
    """The spec flags given to ``submit``, as typed, for the ``hvdjob run`` inside the script."""
    argv: List[str] = []
    for text in flags.set_options:
        argv += ["--set", text]
    for flag, value in (("--np", flags.np), ("--launcher", flags.launcher), ("--hostfile", flags.hostfile),
                        ("-H", flags.hosts)):
        if value is not None:
            argv += [flag, value]
    return argv


def _fresh_dir(path: str) -> str:
    """Create ``path`` (or ``path-2``, ``path-3`` ... when another submit took it this second)."""
    candidate, n = path, 1
    while True:
        try:
            os.makedirs(candidate)
            return candidate
        except FileExistsError:
            n += 1
            candidate = f"{path}-{n}"


def _record(spec: JobSpec, spec_path: str, script_path: str, run_dir: str, job_id: str) -> records.Submission:
    submission = records.Submission(
        job_id=job_id,
        name=spec.name,
        spec=spec_path,
        script=script_path,
        output=os.path.join(run_dir, OUTPUT_PATTERN.replace("%j", job_id)),
        error=os.path.join(run_dir, ERROR_PATTERN.replace("%j", job_id)),
        cwd=os.getcwd(),
        submitted_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    records.append(spec.run_root, submission)
    return submission
