"""What a user sees while ranks run: live progress bars, a rank selection, folded identical lines.

Real ``hvdjob run`` processes with tiny scripts (no framework import, so ranks start in a second),
output captured to a file as in a CI log.
"""
from __future__ import annotations

import re
import time

import pytest

from tests.reliability.support import JobRunner

pytestmark = pytest.mark.integration

PROGRESS = """\
import os, sys, time
rank = int(os.environ["HOROVOD_RANK"] if "HOROVOD_RANK" in os.environ else os.environ["OMPI_COMM_WORLD_RANK"])
if rank == 0:
    for i in range(31):  # about three seconds of a redrawn line, as tqdm draws it
        sys.stdout.write(f"\\rprogress {i}/30")
        sys.stdout.flush()
        time.sleep(0.1)
    sys.stdout.write("\\n")
print(f"rank {rank} done", flush=True)
"""

SAME_LINES = """\
import os, time
from pathlib import Path
rank = int(os.environ["HOROVOD_RANK"])
Path(f"ready.{rank}").write_text("")  # a barrier: ranks of a busy machine start seconds apart
while not all(Path(f"ready.{r}").exists() for r in range(4)):
    time.sleep(0.02)
print("loading data", flush=True)
time.sleep(0.5)
print("epoch 1 done", flush=True)
print(f"my rank is {rank}", flush=True)
"""


def script_job(jobs: JobRunner, body: str, np: int = 2, launcher: str = "gloo") -> str:
    jobs.write("script.py", body)
    return str(jobs.write(f"job-{launcher}.yaml", f"""
        name: live
        framework: torch
        launcher: {launcher}
        script: script.py
        resources: {{np: {np}}}
        """))


def _raw_stdout(job) -> str:  # type: ignore[no-untyped-def]
    """hvdjob's stdout as written (``read_text`` would turn every ``\\r`` into a newline)."""
    return job.out_path.read_bytes().decode(errors="replace")


def _wait_raw(job, pattern: str, timeout: float = 120) -> float:  # type: ignore[no-untyped-def]
    regex = re.compile(pattern, re.M)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if regex.search(_raw_stdout(job)):
            return time.monotonic()
        assert job.proc.poll() is None, f"hvdjob ended before {pattern!r}:\n{_raw_stdout(job)[-2000:]!r}"
        time.sleep(0.02)
    raise AssertionError(f"{pattern!r} not seen within {timeout} s")


@pytest.mark.parametrize("launcher", ["gloo", "mpi"])
def test_a_carriage_return_progress_line_shows_while_the_rank_runs(jobs: JobRunner, launcher: str, measure) -> None:
    job = jobs.start("run", script_job(jobs, PROGRESS, launcher=launcher))
    first_at = _wait_raw(job, r"\[0\] progress \d+/30\r")
    done_at = _wait_raw(job, r"^\[0\] rank 0 done$", timeout=60)
    assert job.wait(60) == 0, job.output[-2000:]

    ahead = done_at - first_at
    assert ahead > 1.0, f"the progress line arrived only {ahead:.2f} s before the rank finished"
    updates = [int(n) for n in re.findall(r"\[0\] progress (\d+)/30\r", _raw_stdout(job))]
    assert len(updates) >= 3 and updates == sorted(updates), updates  # several states, in order
    log = (job.find_run_dir() / "rank.0.log").read_bytes().decode()
    assert "progress 30/30\nrank 0 done\n" in log and "\r" not in log  # the log keeps the final state
    measure(f"\\r progress line ({launcher}): first update seen before the rank ended by", f"{ahead:.2f} s "
            f"({len(updates)} updates shown)")


def test_ranks_flag_shows_only_the_selected_ranks(jobs: JobRunner) -> None:
    job = jobs.run("run", script_job(jobs, SAME_LINES, np=4), "--ranks", "0,2-3")
    assert job.proc.returncode == 0, job.output[-2000:]
    assert sorted(re.findall(r"^\[(\d)\] my rank is \d$", job.stdout, re.M)) == ["0", "2", "3"], job.stdout
    assert not re.search(r"^\[1\]", job.stdout, re.M), job.stdout
    assert "my rank is 1" in (job.run_dir / "rank.1.log").read_text()  # still logged


def test_identical_lines_of_four_ranks_are_folded_by_default(jobs: JobRunner) -> None:
    spec = script_job(jobs, SAME_LINES, np=4)
    job = jobs.run("run", spec)
    assert job.proc.returncode == 0, job.output[-2000:]
    lines = job.stdout.splitlines()
    assert lines.count("[0-3] loading data") == 1, job.stdout
    assert lines.count("[0-3] epoch 1 done") == 1, job.stdout
    assert sorted(line for line in lines if "my rank is" in line) == [f"[{r}] my rank is {r}" for r in range(4)]

    for ready in jobs.workdir.glob("ready.*"):
        ready.unlink()
    everything = jobs.run("run", spec, "--no-fold")
    assert everything.stdout.count("loading data") == 4 and "[0-3]" not in everything.stdout


def test_an_error_printed_by_every_rank_is_not_folded(jobs: JobRunner) -> None:
    body = SAME_LINES.split('print("loading data"')[0] + "print('ValueError: same on all', flush=True)\ntime.sleep(1)\n"
    job = jobs.run("run", script_job(jobs, body + "raise SystemExit(1)\n", np=4))
    assert job.proc.returncode == 1
    assert sorted(re.findall(r"^\[(\d)\] ValueError: same on all$", job.stdout, re.M)) == ["0", "1", "2", "3"]
    assert "[0-3] ValueError" not in job.stdout
