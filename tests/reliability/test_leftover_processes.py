"""A rank that exits while a process it started still runs: the job ends, and that process with it."""
from __future__ import annotations

import time

import pytest

from tests.hvdjob_process import processes_of_run
from tests.reliability.support import JobRunner

pytestmark = pytest.mark.integration

# A helper that inherits the rank's stdout (so it holds the supervisor's pipe open) and would run
# for five minutes; its grandchild, under a shell, too.
SCRIPT = """
import os, subprocess
subprocess.Popen(["sleep", "300"])
subprocess.Popen(["sh", "-c", "sleep 301; echo never"])
print("training done", flush=True)
"""


@pytest.mark.parametrize("data_plane", ["gloo", "mpi"])
def test_processes_a_rank_leaves_running_end_with_the_job(jobs: JobRunner, data_plane: str, measure) -> None:
    script = jobs.write("leaves_helpers.py", SCRIPT)
    started = time.monotonic()
    job = jobs.run("run", "--np", "2", "--framework", "torch", "--set", f"horovod.data_plane={data_plane}",
                   str(script), timeout=90)
    took = time.monotonic() - started
    assert job.proc.returncode == 0, job.output
    assert job.stdout.count("training done") == 2, job.output
    for rank in (0, 1):
        assert f"[{rank}] hvdjob: rank {rank}: ended 3 process(es) it left running" in job.stdout, job.output
    assert processes_of_run(job.run_id) == [], job.output
    measure(f"rank leaves a helper holding its stdout ({data_plane}): job end after start", f"{took:.1f} s")
