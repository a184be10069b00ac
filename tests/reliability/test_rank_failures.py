"""A rank's worker killed with SIGKILL mid-training: the job ends cleanly, or restarts and resumes exactly."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest

from hvdrun_cli.adapters.base import ENV_PARAM_DUMP
from tests.hvdjob_process import processes_of_run
from tests.reliability.support import JobRunner, kill_pid, managed_job, newest_checkpoint

pytestmark = pytest.mark.integration
CHECKPOINT_SAVED = r"^\[0\] hvdjob: checkpoint saved: .*ckpt-0+{step}\.pt$"
PROGRESS = r"^\[0\] epoch \d+/\d+ step (\d+)/"


def test_killed_rank_stops_the_job_names_it_and_leaves_no_process(jobs: JobRunner, measure) -> None:
    job = jobs.start("run", str(managed_job(jobs, epochs=30)))
    job.find_run_dir()
    job.wait_for(CHECKPOINT_SAVED.format(step=20))
    victim = job.worker_pid(1)
    killed_at = kill_pid(victim)
    code = job.wait(60)
    took = time.monotonic() - killed_at
    left = processes_of_run(job.run_id)

    assert code == 128 + 9, job.output[-3000:]
    assert "rank 1 was killed by SIGKILL" in job.stderr
    assert "Traceback" not in job.stderr
    assert took < 30, f"job took {took:.1f} s to end after the kill"
    assert left == [], f"processes of the run still alive: {left}"
    result = json.loads((job.run_dir / "result.json").read_text())
    assert result["failed_rank"] == 1 and result["exit_code"] == 137
    step, state = newest_checkpoint(jobs.workdir / "runs" / "reliability" / "checkpoints")
    assert step >= 20 and state["position"]["global_step"] == step
    measure("kill -9 of rank 1, no restarts: kill to job end", f"{took:.2f} s")
    measure("kill -9 of rank 1, no restarts: processes left", str(len(left)))
    measure("kill -9 of rank 1, no restarts: newest checkpoint", f"step {step}, SHA-256 verified, loads")


def test_restart_resumes_from_checkpoint_and_matches_an_uninterrupted_run(
    jobs: JobRunner, tmp_path: Path, measure
) -> None:
    reference = jobs.run("run", str(managed_job(jobs, "reference.yaml", job_name="reference", epochs=4)),
                         env={ENV_PARAM_DUMP: str(tmp_path / "reference-params")})
    assert reference.proc.returncode == 0, reference.output[-3000:]

    spec = managed_job(jobs, "restart.yaml", job_name="restarted", epochs=4, restarts=1)
    job = jobs.start("run", str(spec), env={ENV_PARAM_DUMP: str(tmp_path / "restarted-params")})
    job.find_run_dir()
    job.wait_for(CHECKPOINT_SAVED.format(step=20))
    killed_at = kill_pid(job.worker_pid(1))
    relaunch, _ = job.wait_for(r"^hvdjob: attempt 2 of 2: relaunching 2 ranks ([\d.]+) s after the failure", 60)
    resumed, _ = job.wait_for(r"^\[0\] hvdjob: resumed from \S+ at step (\d+)", 60, after=relaunch.end())
    _, progress_at = job.wait_for(PROGRESS, 60, after=resumed.end())
    code = job.wait(120)

    assert code == 0, job.output[-3000:]
    assert re.search(r"^\[0\] hvdjob: job restarted, attempt 1, torch managed", job.stdout, re.M)
    resumed_step = int(resumed.group(1))
    assert resumed_step >= 20 and resumed_step % 10 == 0
    summary = json.loads((job.run_dir / "summary.json").read_text())
    assert summary["attempt"] == 1 and summary["resumed_from_step"] == resumed_step
    assert summary["status"] == "completed" and summary["steps"] == 4 * 23
    assert processes_of_run(job.run_id) == []
    ours = np.load(tmp_path / "restarted-params" / "rank0.npy")
    assert np.array_equal(ours, np.load(tmp_path / "restarted-params" / "rank1.npy"))
    assert np.array_equal(ours, np.load(tmp_path / "reference-params" / "rank0.npy")), (
        "final parameters differ from the uninterrupted run")
    measure("kill -9 of rank 1, restarts: 1: failure to relaunch (hvdjob's own count)", f"{relaunch.group(1)} s")
    measure("kill -9 of rank 1, restarts: 1: kill to first progress line after relaunch",
            f"{progress_at - killed_at:.2f} s (resumed at step {resumed_step})")
    measure("restart vs uninterrupted run: final parameters", f"identical ({ours.size} values)")
