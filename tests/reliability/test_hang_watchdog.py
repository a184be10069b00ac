"""A rank that stops calling collectives: the progress watchdog ends the job and names that rank."""
from __future__ import annotations

import time

import pytest

from tests.hvdjob_process import processes_of_run
from tests.reliability.support import HERE, JobRunner

pytestmark = pytest.mark.integration
TIMEOUT_S = 8


def test_watchdog_stops_a_hung_job_and_names_the_rank(jobs: JobRunner, measure) -> None:
    spec = jobs.write("hang.yaml", f"""
        framework: torch
        name: hang
        script: {HERE / "hang_torch.py"}
        launcher: gloo
        resources: {{np: 2}}
        """)
    job = jobs.start("run", str(spec), "--progress-timeout", str(TIMEOUT_S))
    job.find_run_dir()
    _, hung_at = job.wait_for(r"^\[1\] rank 1 stops calling collectives$", 120)
    code = job.wait(TIMEOUT_S + 60)
    took = time.monotonic() - hung_at

    assert code == 124, job.output[-3000:]
    assert f"job stopped by the watchdog: no progress for {TIMEOUT_S} s; stalled rank 1:" in job.stderr
    assert "stalled ranks" not in job.stderr  # rank 0, which only waits for rank 1, is not blamed
    assert TIMEOUT_S - 1 < took < TIMEOUT_S + 20
    assert processes_of_run(job.run_id) == []
    measure("hung rank (script mode), --progress-timeout 8: hang to job end", f"{took:.2f} s, rank 1 named")
