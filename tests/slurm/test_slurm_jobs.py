"""submit, status, logs and cancel against a real slurmctld/slurmd on localhost.

The jobs here end inside ``slurm.setup`` (their own shell lines run before hvdjob), so these tests
exercise the script, sbatch and the job commands without depending on training; the jobs that do
train are in test_slurm_training.py.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from hvdrun_cli.slurm.client import parse_scontrol
from run_hvdjob import hvdjob, job_output, submit, write_spec
from slurm_cluster import SlurmCluster

pytestmark = [pytest.mark.slurm, pytest.mark.integration]


def setup_only_spec(directory: Path, name: str, setup: list, extra: list = ()) -> Path:
    """A valid training spec whose batch script ends in its setup lines, before hvdjob starts."""
    lines = ["framework: torch", f"name: {name}", "train: {epochs: 1}", "resources: {np: 1}", "slurm:",
             "  partition: debug", '  time: "00:05:00"', "  setup:"]
    lines += [f"    - {json.dumps(line)}" for line in setup]
    if extra:
        lines += ["  extra:"] + [f"    - {json.dumps(option)}" for option in extra]
    return write_spec(directory / f"{name}.yaml", lines)


def test_submitted_job_completes_and_status_and_logs_show_it(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    spec = setup_only_spec(tmp_path, "hello", ['echo "hello from job $SLURM_JOB_ID on $SLURMD_NODENAME"', "exit 0"])
    job_id = submit(slurm_cluster, tmp_path, spec)
    slurm_cluster.wait_for_state(job_id, ["COMPLETED", "FAILED", "CANCELLED"], timeout=60)

    status = hvdjob(slurm_cluster, tmp_path, "status", "--json")
    assert status.returncode == 0, status.stderr
    (row,) = json.loads(status.stdout)  # by default: the jobs submitted from this directory
    assert row["job_id"] == job_id and row["name"] == "hello"
    assert row["state"] == "COMPLETED"

    table = hvdjob(slurm_cluster, tmp_path, "status", job_id)
    assert table.returncode == 0 and job_id in table.stdout and "COMPLETED" in table.stdout

    assert job_output(slurm_cluster, tmp_path, job_id) == f"hello from job {job_id} on localhost\n"
    scripts = list((tmp_path / "runs" / "hello" / "slurm").glob("*/job.sbatch"))
    assert len(scripts) == 1


def test_quoted_values_reach_slurm_unchanged(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    comment = 'it\'s a "quoted" value #1; $(echo no)'
    spec = setup_only_spec(tmp_path, "quoting", ["exit 0"], extra=[f"--comment={comment}"])
    spec.write_text(spec.read_text() + 'run_root: "my runs"\n')  # output path with a space
    job_id = submit(slurm_cluster, tmp_path, spec)
    fields = parse_scontrol(slurm_cluster.run(["scontrol", "show", "job", job_id]).stdout)
    assert fields["Comment"] == comment
    slurm_cluster.wait_for_state(job_id, ["COMPLETED"], timeout=60)
    out_files = list((tmp_path / "my runs" / "quoting" / "slurm").glob(f"*/slurm-{job_id}.out"))
    assert len(out_files) == 1, "sbatch did not put the output where the script said"


def test_cancel_stops_a_running_job(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    spec = setup_only_spec(tmp_path, "sleeper", ["echo started", "sleep 300"])
    job_id = submit(slurm_cluster, tmp_path, spec)
    slurm_cluster.wait_for_state(job_id, ["RUNNING"], timeout=60)

    result = hvdjob(slurm_cluster, tmp_path, "cancel", job_id)
    assert result.returncode == 0, result.stderr
    assert f"cancelled job {job_id}" in result.stdout
    slurm_cluster.wait_for_state(job_id, ["CANCELLED"], timeout=60)

    status = json.loads(hvdjob(slurm_cluster, tmp_path, "status", job_id, "--json").stdout)
    assert status[0]["state"] == "CANCELLED"
    again = hvdjob(slurm_cluster, tmp_path, "cancel", job_id)
    assert again.returncode == 0 and "already ended (CANCELLED)" in again.stdout


def test_cancel_of_an_unknown_job_fails(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    result = hvdjob(slurm_cluster, tmp_path, "cancel", "987654")
    assert result.returncode == 1
    assert "Slurm does not know job 987654" in result.stderr


def test_logs_follow_prints_everything_and_returns_when_the_job_ends(slurm_cluster: SlurmCluster,
                                                                       tmp_path: Path) -> None:
    spec = setup_only_spec(tmp_path, "ticker", ["for i in 1 2 3 4; do echo tick $i; sleep 1; done", "exit 0"])
    job_id = submit(slurm_cluster, tmp_path, spec)
    output = job_output(slurm_cluster, tmp_path, job_id, "--follow")
    assert output == "tick 1\ntick 2\ntick 3\ntick 4\n"
    assert slurm_cluster.job_state(job_id) == "COMPLETED"


def test_logs_finds_a_job_hvdjob_did_not_submit(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    out = tmp_path / "elsewhere" / "plain-%j.out"
    out.parent.mkdir()
    submitted = slurm_cluster.run(["sbatch", "--parsable", f"--output={out}", "--wrap", "echo plain sbatch"])
    job_id = submitted.stdout.strip()
    slurm_cluster.wait_for_state(job_id, ["COMPLETED"], timeout=60)
    assert job_output(slurm_cluster, tmp_path, job_id) == "plain sbatch\n"  # located via scontrol show job


def test_status_without_submissions_says_so(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    result = hvdjob(slurm_cluster, tmp_path, "status")
    assert result.returncode == 0
    assert "no jobs submitted from" in result.stdout
