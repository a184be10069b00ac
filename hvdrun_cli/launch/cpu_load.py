"""How busy other work keeps the job's CPUs right now: the input to ``binding: auto``'s "machine busy".

Two reads of the per-CPU counters in ``/proc/stat``, ``WINDOW_S`` apart, while hvdjob itself sleeps: the
busy share of the CPUs the job may use is what other work takes from them. The 1-minute load average
was the earlier signal and misled: it still counts a job that ended seconds ago (hvdjob's own
previous run), so back-to-back jobs on an idle machine went unbound; and it counts work on CPUs outside
this job's affinity mask.
"""
from __future__ import annotations

import time
from typing import Dict, Iterable, Mapping, Optional, Sequence

PROC_STAT = "/proc/stat"
WINDOW_S = 0.05  # 5 clock ticks per CPU at USER_HZ 100: enough to tell busy from idle
IDLE_FIELDS = (3, 4)  # idle, iowait (after user, nice, system)
COUNTED_FIELDS = 8  # user .. steal; guest time is already inside user


def parse_cpu_times(text: str) -> Dict[int, Sequence[int]]:
    """``cpuN`` lines of ``/proc/stat``: CPU number -> its tick counters (user, nice, system, idle, ...)."""
    times: Dict[int, Sequence[int]] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(" ")
        if name.startswith("cpu") and name[3:].isdigit():
            times[int(name[3:])] = [int(v) for v in rest.split()[:COUNTED_FIELDS]]
    return times


def busy_share(before: Mapping[int, Sequence[int]], after: Mapping[int, Sequence[int]],
               cpus: Iterable[int]) -> Optional[float]:
    """Busy fraction (0..1) of ``cpus`` between two readings; None when none of them was counted."""
    busy = total = 0
    for cpu in cpus:
        if cpu not in before or cpu not in after:
            continue
        delta = [b - a for a, b in zip(before[cpu], after[cpu])]
        ticks = sum(delta)
        idle = sum(delta[i] for i in IDLE_FIELDS if i < len(delta))
        busy, total = busy + ticks - idle, total + ticks
    return None if total <= 0 else max(0.0, min(1.0, busy / total))


def _read(path: str) -> Optional[Dict[int, Sequence[int]]]:
    try:
        with open(path, encoding="ascii") as fh:
            return parse_cpu_times(fh.read())
    except (OSError, ValueError):
        return None


def measure_busy_share(cpus: Iterable[int], window_s: float = WINDOW_S, path: str = PROC_STAT) -> Optional[float]:
    """Share of ``cpus`` that other work kept busy over ``window_s`` (None where /proc/stat is missing)."""
    cpus = list(cpus)
    before = _read(path)
    if before is None:
        return None
    time.sleep(window_s)
    after = _read(path)
    return None if after is None else busy_share(before, after, cpus)
