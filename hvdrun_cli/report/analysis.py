"""The numbers ``hvdjob report`` shows: curves per step and each rank's step time and allreduce wait.

Per rank, the median over its logging windows (robust to the windows that also hold a validation
pass or a checkpoint); the first window of each attempt is left out when there are others, since it
holds start-up work. The slowest rank is the one the others wait for: the largest compute time
(step time minus allreduce wait). Synchronous ranks all take the same wall time per step, so
without the wait there is no slowest rank to name: numbers that were not recorded are ``None``
("not recorded" in the picture), never guessed.
"""
from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Sequence

from hvdrun_cli.report.rundata import RunData


@dataclass(frozen=True)
class RankTiming:
    rank: int
    windows: int
    step_time_s: Optional[float]  # median seconds per step
    allreduce_wait_s: Optional[float]  # median seconds per step waiting in allreduce; None: not recorded

    @property
    def compute_s(self) -> Optional[float]:
        if self.step_time_s is None or self.allreduce_wait_s is None:
            return None
        return max(0.0, self.step_time_s - self.allreduce_wait_s)


@dataclass(frozen=True)
class Imbalance:
    """Compute per step (step time minus allreduce wait) of the slowest and the fastest rank."""

    slowest_rank: int
    fastest_rank: int
    slowest_s: float
    fastest_s: float

    @property
    def percent(self) -> float:
        """How much longer the slowest rank takes than the fastest, in percent."""
        return 100.0 * (self.slowest_s / self.fastest_s - 1.0) if self.fastest_s > 0 else 0.0

    def describe(self) -> str:
        return (f"slowest rank {self.slowest_rank}: {self.percent:.0f}% more compute per step than rank "
                f"{self.fastest_rank} ({self.slowest_s * 1000:.2f} ms vs {self.fastest_s * 1000:.2f} ms)")


def _median(values: Sequence[Optional[float]]) -> Optional[float]:
    present = [float(v) for v in values if isinstance(v, (int, float))]
    return statistics.median(present) if present else None


def _steady_windows(windows: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Drop each attempt's first window (start-up) when more remain."""
    firsts = set()
    seen = set()
    for i, window in enumerate(windows):
        attempt = window.get("attempt", 0)
        if attempt not in seen:
            seen.add(attempt)
            firsts.add(i)
    steady = [w for i, w in enumerate(windows) if i not in firsts]
    return steady or list(windows)


def rank_timings(run: RunData) -> List[RankTiming]:
    timings = []
    for rank, windows in run.timing.items():
        steady = _steady_windows(windows)
        timings.append(RankTiming(rank, len(steady), _median([w.get("step_time_s") for w in steady]),
                                  _median([w.get("allreduce_wait_s") for w in steady])))
    return timings


def imbalance(timings: Sequence[RankTiming]) -> Optional[Imbalance]:
    """None with fewer than two ranks or when any rank's allreduce wait was not recorded."""
    values = {t.rank: t.compute_s for t in timings if t.compute_s is not None}
    if len(timings) < 2 or len(values) != len(timings):
        return None
    slowest = max(values, key=lambda r: (values[r], -r))
    fastest = min(values, key=lambda r: (values[r], r))
    return Imbalance(slowest, fastest, float(values[slowest]), float(values[fastest]))  # type: ignore[arg-type]


def _series(records: Sequence[Dict[str, Any]], keys: Sequence[str]) -> Dict[str, List[Any]]:
    return {key: [r.get(key) for r in records] for key in ("step", *keys)}


def best_val_accuracy(run: RunData) -> Optional[float]:
    values = [v.get("val_accuracy") for v in run.validation]
    present = [float(v) for v in values if isinstance(v, (int, float))]
    if present:
        return max(present)
    final = (run.summary or {}).get("val_accuracy")
    return float(final) if isinstance(final, (int, float)) else None


def report_numbers(run: RunData) -> Dict[str, Any]:
    """Everything the PNG shows, as plain data (``hvdjob report --json``)."""
    timings = rank_timings(run)
    balance = imbalance(timings)
    summary = run.summary or {}
    return {
        "run_dir": run.path,
        "name": run.name,
        "status": summary.get("status"),
        "steps": summary.get("steps", run.train[-1].get("step") if run.train else None),
        "world_size": summary.get("world_size", len(timings) or None),
        "best_val_accuracy": best_val_accuracy(run),
        "samples_per_sec": summary.get("samples_per_sec"),
        "train": _series(run.train, ("loss", "accuracy", "lr", "samples_per_sec")),
        "validation": _series(run.validation, ("val_loss", "val_accuracy")),
        "ranks": [dict(asdict(t), compute_s=t.compute_s) for t in timings],
        "allreduce_wait_recorded": bool(timings) and all(t.allreduce_wait_s is not None for t in timings),
        "imbalance": None if balance is None else {
            **asdict(balance), "percent": round(balance.percent, 2), "text": balance.describe()},
    }
