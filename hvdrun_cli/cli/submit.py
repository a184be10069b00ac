"""``hvdjob submit job.yaml``: render the job's sbatch script and hand it to Slurm.

The script is built first and only then saved and submitted, so ``--dry-run`` prints exactly what
``sbatch`` would receive (apart from the run directory's timestamp). Spec flags given here
(``--set``, ``--np`` ...) are repeated on the ``hvdjob run`` inside the script, so the job runs the
spec this command checked; the job starts in this directory (sbatch's default), where relative
flag values mean the same.

A script given instead of a spec (``hvdjob submit --np 4 train.py ARGS``) is submitted as its
equivalent spec: the one ``--save-spec FILE`` wrote, or else ``job.yaml`` written into the job's
Slurm directory, with the flags' values in it.
"""
from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from typing import List, Tuple

import click

from hvdrun_cli.cli.common import clean_errors
from hvdrun_cli.cli.spec_options import SpecFlags, spec_options
from hvdrun_cli.cli.target import Job, ScriptFlags, SpecOrScriptCommand, load_job, save_spec, script_options, target_argument
from hvdrun_cli.slurm import records
from hvdrun_cli.slurm.allocation_fit import allocation_warning
from hvdrun_cli.slurm.client import SlurmClient
from hvdrun_cli.slurm.sbatch import ERROR_PATTERN, OUTPUT_PATTERN, render_sbatch
from hvdrun_cli.spec.model import JobSpec

SCRIPT_NAME = "job.sbatch"
SCRIPT_JOB_SPEC = "job.yaml"  # a script job's spec, written into its Slurm directory


@click.command("submit", cls=SpecOrScriptCommand)
@target_argument
@click.option("--dry-run", is_flag=True, help="Print the sbatch script and stop (nothing is written or submitted).")
@spec_options
@script_options
@clean_errors
def submit(target: Tuple[str, ...], dry_run: bool, spec_flags: SpecFlags, script_flags: ScriptFlags) -> None:
    """Render an sbatch script for the job (a spec, or a script with its arguments) and submit it with sbatch."""
    job = load_job(target, spec_flags, script_flags, command="submit")
    spec = job.spec
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    planned_dir = os.path.join(spec.run_root, spec.name, "slurm", stamp)
    spec_path, forwarded = _spec_for_sbatch(job, spec_flags, planned_dir)
    script = render_sbatch(spec, spec_path, forwarded, planned_dir, sys.executable)
    warning = allocation_warning(spec)
    if warning:
        click.echo(f"hvdjob submit: warning: {warning}", err=True)
    if dry_run:
        if job.script_job is not None and job.saved_spec is None:
            click.echo(f"hvdjob: submit would write the script job's spec to {spec_path} (--save-spec FILE "
                       "writes it where you choose)", err=True)
        click.echo(script, nl=False)
        return
    client = SlurmClient("submit")
    client.require("sbatch")
    run_dir = _fresh_dir(planned_dir)
    if run_dir != planned_dir:  # another submit of this job took the directory this second
        spec_path, forwarded = _spec_for_sbatch(job, spec_flags, run_dir)
        script = render_sbatch(spec, spec_path, forwarded, run_dir, sys.executable)
    if job.script_job is not None and job.saved_spec is None:
        save_spec(job.script_job, spec, spec_flags.overrides(), spec_path,
                  ["hvdjob", "submit", *spec_flags.argv(), job.script_job.script, *job.script_job.args])
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


def _spec_for_sbatch(job: Job, flags: SpecFlags, run_dir: str) -> Tuple[str, List[str]]:
    """(spec file, flags) for the ``hvdjob run`` inside the script.

    A spec runs with the flags given here repeated; a script job's spec file has their values in it.
    """
    if job.script_job is None:
        assert job.spec.source is not None
        return job.spec.source, forwarded_flags(flags)
    if job.saved_spec is not None:
        return os.path.abspath(job.saved_spec), []
    return os.path.join(run_dir, SCRIPT_JOB_SPEC), []


def forwarded_flags(flags: SpecFlags) -> List[str]:
    """The spec flags given to ``submit``, as typed, for the ``hvdjob run`` inside the script."""
    return flags.argv()


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
