"""Ctrl-C and SIGTERM sent to ``hvdjob``: every rank saves, stops, and the checkpoint left is whole."""
from __future__ import annotations

import re
import signal
import time

import pytest

from tests.hvdjob_process import processes_of_run
from tests.reliability.support import JobRunner, managed_job, newest_checkpoint, stop_job

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_stop_signal_checkpoints_every_rank_and_exits_75(jobs: JobRunner, signum: int, measure) -> None:
    job = jobs.start("run", str(managed_job(jobs, epochs=30)))
    job.find_run_dir()
    job.wait_for(r"^\[0\] hvdjob: checkpoint saved: .*ckpt-0+10\.pt$")
    sent_at = time.monotonic()
    stop_job(job, signum)
    code = job.wait(60)
    took = time.monotonic() - sent_at
    name = signal.Signals(signum).name

    assert code == 75, job.output[-3000:]
    assert f"job stopped on {name}; ranks saved a checkpoint" in job.stderr
    saved = re.search(r"^\[0\] hvdjob: stop requested \(.*\); saving at step (\d+)$", job.stdout, re.M)
    assert saved, job.stdout[-3000:]
    for rank in (0, 1):
        log = (job.run_dir / f"rank.{rank}.log").read_text()
        assert f"hvdjob: rank {rank} exited with code 75" in log
    step, state = newest_checkpoint(jobs.workdir / "runs" / "reliability" / "checkpoints")
    assert step == int(saved.group(1)), "the newest checkpoint is not the one saved on stop"
    assert state["position"]["global_step"] == step and state["model"]
    assert processes_of_run(job.run_id) == []
    measure(f"{name} to hvdjob: signal to exit (checkpoint included)", f"{took:.2f} s, exit {code}")
    measure(f"{name} to hvdjob: newest checkpoint", f"step {step}, SHA-256 verified, loads")
