"""Progress watchdog: stop a job whose ranks stopped making progress, and say which rank is at fault.

A hung Horovod job is usually one rank that stopped calling collectives (stuck in I/O, a deadlock,
an endless sleep) while every other rank waits for it inside a collective. All ranks go quiet at
once, so silence alone cannot tell them apart. Three sources can:

* Horovod's stall inspector ("Missing ranks: 1: [allreduce.x]"), when the ranks keep negotiating;
  with Gloo an idle rank stops its background loop too, and then no such warning ever comes;
* CPU use of each rank's main thread, for ranks on this machine: a PyTorch rank waiting in a
  collective busy-waits, while the rank at fault sleeps or blocks and uses none;
* progress marks (``hvdjob: at step N``) that managed ranks print, which give each rank's last step.

When none of them singles a rank out, every rank is named, with how long each has been quiet.

Progress is any rank output except hvdjob's bookkeeping and Horovod's own log lines (a hung job
keeps printing stall warnings). The clock starts when the ranks are started, so the timeout also
bounds a start-up that never produces anything.
"""
from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass
from typing import Callable, Deque, Dict, List, Optional, Tuple

from hvdrun_cli.launch.output import OutputRouter

SAMPLE_EVERY_S = 1.0
CPU_WINDOW_S = 5.0  # CPU use is judged over this much of the quiet period
BUSY_FRACTION = 0.2  # of one core: a main thread spinning in a collective is well above this
IDLE_FRACTION = 0.02
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

CpuReader = Callable[[int], Optional[float]]


def main_thread_cpu_seconds(pid: int) -> Optional[float]:
    """User + system CPU seconds of a process's main thread, or None when it cannot be read."""
    try:
        with open(f"/proc/{pid}/task/{pid}/stat", encoding="ascii", errors="replace") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    except (OSError, IndexError, ValueError):
        return None


@dataclass(frozen=True)
class Stall:
    """The verdict: which ranks are named and why."""

    ranks: Tuple[int, ...]
    reason: str
    quiet_s: float

    def describe(self) -> str:
        names = ", ".join(str(r) for r in self.ranks)
        noun = "rank" if len(self.ranks) == 1 else "ranks"
        return f"no progress for {self.quiet_s:.0f} s; stalled {noun} {names}: {self.reason}"


class ProgressWatchdog:
    """Decides, poll after poll, whether the job has stalled; cheap enough to call every 100 ms."""

    def __init__(
        self,
        timeout_s: float,
        router: OutputRouter,
        own_hostname: str,
        started_at: float,
        cpu_reader: CpuReader = main_thread_cpu_seconds,
    ) -> None:
        self.timeout_s = timeout_s
        self._router = router
        self._own_host = own_hostname
        self._started_at = started_at
        self._cpu = cpu_reader
        self._samples: Dict[int, Deque[Tuple[float, float]]] = {}
        self._last_sample = float("-inf")

    def check(self, now: float) -> Optional[Stall]:
        self._sample(now)
        progress = dict(self._router.last_progress)
        newest = max(progress.values(), default=self._started_at)
        newest = max(newest, self._started_at)
        quiet = now - newest
        if quiet < self.timeout_s:
            return None
        return self._verdict(now, newest, progress)

    # -- evidence -----------------------------------------------------------------------------
    def _local_pids(self) -> Dict[int, int]:
        hosts = self._router.rank_hosts
        short = self._own_host.split(".")[0]
        return {
            rank: pid
            for rank, pid in self._router.rank_pids.items()
            if hosts.get(rank) in (self._own_host, short)
        }

    def _sample(self, now: float) -> None:
        if now - self._last_sample < SAMPLE_EVERY_S:
            return
        self._last_sample = now
        for rank, pid in self._local_pids().items():
            seconds = self._cpu(pid)
            if seconds is None:
                continue
            window = self._samples.setdefault(rank, deque())
            window.append((now, seconds))
            while window and now - window[0][0] > CPU_WINDOW_S + SAMPLE_EVERY_S:
                window.popleft()

    def _cpu_fraction(self, rank: int, since: float) -> Optional[float]:
        window = [s for s in self._samples.get(rank, ()) if s[0] >= since]
        if len(window) < 2 or window[-1][0] - window[0][0] < SAMPLE_EVERY_S:
            return None
        (t0, c0), (t1, c1) = window[0], window[-1]
        return (c1 - c0) / (t1 - t0)

    def _verdict(self, now: float, newest: float, progress: Dict[int, float]) -> Stall:
        quiet = now - newest
        ranks = sorted(set(self._router.rank_pids) | set(progress))
        report = self._router.latest_stall_report(since=newest)
        if report and report.missing:
            waits = "; ".join(f"rank {r} never submitted {t}" for r, t in sorted(report.missing.items()))
            return Stall(tuple(sorted(report.missing)), f"Horovod's stall check on rank {report.reporter}: {waits}",
                         quiet)
        since = max(newest, now - CPU_WINDOW_S)
        fractions = {r: self._cpu_fraction(r, since) for r in ranks}
        idle = [r for r, f in fractions.items() if f is not None and f < IDLE_FRACTION]
        busy = [r for r, f in fractions.items() if f is not None and f > BUSY_FRACTION]
        if idle and busy:
            return Stall(tuple(idle), f"idle (not in a collective) while {_ranks(busy)} busy-wait"
                         f"{'s' if len(busy) == 1 else ''} for {'it' if len(idle) == 1 else 'them'} "
                         "inside a collective", quiet)
        return Stall(tuple(ranks), "no rank could be singled out; " + self._last_heard(now, ranks), quiet)

    def _last_heard(self, now: float, ranks: List[int]) -> str:
        parts = []
        for rank in ranks:
            seen = self._router.last_progress.get(rank)
            step = self._router.progress_step.get(rank)
            where = f" at step {step}" if step is not None else ""
            parts.append(f"rank {rank} quiet for {now - seen:.0f} s{where}" if seen is not None
                         else f"rank {rank} never reported progress")
        return ", ".join(parts)


def _ranks(ranks: List[int]) -> str:
    return ("rank " if len(ranks) == 1 else "ranks ") + ", ".join(str(r) for r in ranks)
