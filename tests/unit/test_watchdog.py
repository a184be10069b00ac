"""Progress watchdog verdicts from rank output and per-rank CPU samples (fed by hand, no processes).

Time is a :class:`FakeClock` shared by the router (when lines arrive) and the checks, so no verdict
depends on how busy the machine running the tests is.
"""
from __future__ import annotations

import io
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


class FakeClock:
    """Seconds that move only when the test says so."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _router(tmp_path: Path, ranks: int = 2, clock: Optional[FakeClock] = None) -> OutputRouter:
    router = OutputRouter(str(tmp_path), io.StringIO(), clock=clock or FakeClock())
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
    clock = FakeClock()
    router = _router(tmp_path, clock=clock)
    dog = ProgressWatchdog(10, router, HOST, clock.now, cpu_reader=FakeCpu())
    clock.now += 30  # the ranks took 30 s to print their first step: the timeout counts from there
    router.feed(b"[0] step 1\n")
    assert dog.check(clock.now + 9.9) is None
    assert dog.check(clock.now + 10.1) is not None


def test_horovod_stall_report_names_the_missing_ranks(tmp_path: Path) -> None:
    clock = FakeClock()
    router = _router(tmp_path, ranks=4, clock=clock)
    dog = ProgressWatchdog(5, router, HOST, clock.now, cpu_reader=FakeCpu())
    clock.now += 4
    for line in STALL_WARNING:  # Horovod's own warnings are not progress
        router.feed(line)
    stall = dog.check(clock.now + 2)
    assert stall is not None and stall.ranks == (2, 3)
    assert stall.describe().startswith("no progress for 6 s; stalled ranks 2, 3: Horovod's stall check on rank 0:")
    assert "rank 2 never submitted allreduce.grad_0, allreduce.grad_1" in stall.describe()


def test_idle_rank_is_named_while_its_peer_busy_waits(tmp_path: Path) -> None:
    clock = FakeClock()
    router = _router(tmp_path, clock=clock)
    cpu = FakeCpu()
    start = clock.now
    dog = ProgressWatchdog(8, router, HOST, start, cpu_reader=cpu)
    for second in range(12):  # rank 0 spins in a collective (0.6 s CPU per s), rank 1 sleeps
        cpu.seconds = {100: 0.6 * second, 101: 3.0}
        verdict = dog.check(start + second)
    assert verdict is not None and verdict.ranks == (1,)
    assert "idle (not in a collective) while rank 0 busy-waits for it inside a collective" in verdict.reason


def test_ranks_on_other_hosts_are_not_sampled_and_all_quiet_ranks_are_named(tmp_path: Path) -> None:
    clock = FakeClock()
    router = OutputRouter(str(tmp_path), io.StringIO(), clock=clock)
    router.feed(b"[0] hvdjob: rank 0 started (pid 100 on elsewhere)\n")
    router.feed(b"[1] hvdjob: rank 1 started (pid 101 on elsewhere)\n")
    router.feed(f"[0] {progress_mark(7)}\n".encode())
    cpu = FakeCpu()
    cpu.seconds = {100: 5.0, 101: 0.0}
    dog = ProgressWatchdog(3, router, HOST, clock.now, cpu_reader=cpu)
    for second in range(6):
        verdict = dog.check(clock.now + second)
    assert verdict is not None and verdict.ranks == (0, 1)
    assert "no rank could be singled out" in verdict.reason
    assert "rank 0 quiet for 5 s at step 7" in verdict.reason and "rank 1 never reported progress" in verdict.reason
