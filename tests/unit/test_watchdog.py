"""Progress watchdog verdicts from rank output and per-rank CPU samples (fed by hand, no processes)."""
from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Dict, Optional

from hvdrun_cli.launch.output import OutputRouter, progress_mark
from hvdrun_cli.launch.watchdog import ProgressWatchdog

HOST = "node1"
STALL_WARNING = [
    b"[0] [2026-01-01 10:00:00.123456: W /src/horovod/common/stall_inspector.cc:107] One or more tensors were "
    b"submitted to be reduced, gathered or broadcasted by subset of ranks and are waiting for remainder of ranks "
    b"for more than 60 seconds. This may indicate that different ranks are trying to submit different tensors. \n",
    b"[0] Missing ranks:\n",
    b"[0] 2: [allreduce.grad_0, allreduce.grad_1]\n",
    b"[0] 3: [allreduce.grad_0]\n",
]


class FakeCpu:
    """CPU seconds per pid, advanced by the test between watchdog checks."""

    def __init__(self) -> None:
        self.seconds: Dict[int, float] = {}

    def __call__(self, pid: int) -> Optional[float]:
        return self.seconds.get(pid)


def _router(tmp_path: Path, ranks: int = 2) -> OutputRouter:
    router = OutputRouter(str(tmp_path), io.StringIO())
    for rank in range(ranks):
        router.feed(f"[{rank}] hvdjob: rank {rank} started (pid {100 + rank} on {HOST})\n".encode())
    return router


def test_progress_marks_count_as_progress_but_stay_out_of_terminal_and_logs(tmp_path: Path) -> None:
    terminal = io.StringIO()
    router = OutputRouter(str(tmp_path), terminal)
    router.feed(f"[1] {progress_mark(40)}\n".encode())
    router.feed(b"[1] epoch 1 done\n")
    router.close()
    assert router.progress_step == {1: 40} and 1 in router.last_progress
    assert terminal.getvalue() == "[1] epoch 1 done\n"
    assert (tmp_path / "rank.1.log").read_text() == "epoch 1 done\n"


def test_horovod_warnings_are_output_but_not_progress(tmp_path: Path) -> None:
    router = _router(tmp_path)
    for line in STALL_WARNING:
        router.feed(line)
    assert router.last_progress == {}
    report = router.latest_stall_report(since=0)
    assert report is not None and report.reporter == 0
    assert report.missing == {2: "allreduce.grad_0, allreduce.grad_1", 3: "allreduce.grad_0"}


def test_no_verdict_before_the_timeout(tmp_path: Path) -> None:
    router = _router(tmp_path)
    start = time.monotonic()
    dog = ProgressWatchdog(10, router, HOST, start, cpu_reader=FakeCpu())
    router.feed(b"[0] step 1\n")
    assert dog.check(time.monotonic() + 9) is None
    assert dog.check(time.monotonic() + 11) is not None


def test_horovod_stall_report_names_the_missing_ranks(tmp_path: Path) -> None:
    router = _router(tmp_path, ranks=4)
    dog = ProgressWatchdog(5, router, HOST, time.monotonic(), cpu_reader=FakeCpu())
    for line in STALL_WARNING:
        router.feed(line)
    stall = dog.check(time.monotonic() + 6)
    assert stall is not None and stall.ranks == (2, 3)
    assert stall.describe().startswith("no progress for 6 s; stalled ranks 2, 3: Horovod's stall check on rank 0:")
    assert "rank 2 never submitted allreduce.grad_0, allreduce.grad_1" in stall.describe()


def test_idle_rank_is_named_while_its_peer_busy_waits(tmp_path: Path) -> None:
    router = _router(tmp_path)
    cpu = FakeCpu()
    start = time.monotonic()
    dog = ProgressWatchdog(8, router, HOST, start, cpu_reader=cpu)
    for second in range(12):  # rank 0 spins in a collective (0.6 s CPU per s), rank 1 sleeps
        cpu.seconds = {100: 0.6 * second, 101: 3.0}
        verdict = dog.check(start + second)
    assert verdict is not None and verdict.ranks == (1,)
    assert "idle (not in a collective) while rank 0 busy-waits for it inside a collective" in verdict.reason


def test_ranks_on_other_hosts_are_not_sampled_and_all_quiet_ranks_are_named(tmp_path: Path) -> None:
    router = OutputRouter(str(tmp_path), io.StringIO())
    router.feed(b"[0] hvdjob: rank 0 started (pid 100 on elsewhere)\n")
    router.feed(b"[1] hvdjob: rank 1 started (pid 101 on elsewhere)\n")
    router.feed(f"[0] {progress_mark(7)}\n".encode())
    cpu = FakeCpu()
    cpu.seconds = {100: 5.0, 101: 0.0}
    start = time.monotonic()
    dog = ProgressWatchdog(3, router, HOST, start, cpu_reader=cpu)
    for second in range(6):
        verdict = dog.check(time.monotonic() + second)
    assert verdict is not None and verdict.ranks == (0, 1)
    assert "no rank could be singled out" in verdict.reason
    assert "at step 7" in verdict.reason and "rank 1 never reported progress" in verdict.reason
