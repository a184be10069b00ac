"""Reading Horovod's autotune log (``HOROVOD_AUTOTUNE_LOG``, written by rank 0) into the best parameters.

Horovod writes one CSV row per tried sample (``hierarchical_allreduce, hierarchical_allgather,
torus_allreduce, cache_enabled, cycle_time_ms, tensor_fusion_threshold, score``; the threshold in MB,
the score in bytes/s) and, once tuning has converged, the best row again at the end. A run too short
to converge still gives its best sample so far: the row with the highest score.
"""
from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from typing import List, Optional, Sequence

LOG_FILE = "autotune.csv"


@dataclass(frozen=True)
class AutotuneBest:
    cycle_time_ms: float
    fusion_threshold_mb: float
    cache_enabled: bool
    hierarchical_allreduce: bool
    score: float  # bytes/s as Horovod scores a sample
    samples: int  # rows the log holds

    def spec_settings(self) -> List[str]:
        """``--set`` values that reproduce these parameters without autotuning."""
        return [
            f"horovod.cycle_time_ms={self.cycle_time_ms:g}",
            f"horovod.fusion_threshold_mb={self.fusion_threshold_mb:g}",
            f"horovod.cache_capacity={1024 if self.cache_enabled else 0}",
            f"horovod.hierarchical_allreduce={'true' if self.hierarchical_allreduce else 'false'}",
        ]

    def describe(self) -> str:
        return (f"cycle_time_ms {self.cycle_time_ms:g}, fusion_threshold_mb {self.fusion_threshold_mb:g}, "
                f"response cache {'on' if self.cache_enabled else 'off'}, hierarchical allreduce "
                f"{'on' if self.hierarchical_allreduce else 'off'} (score {self.score / 1e6:,.1f} MB/s, "
                f"best of {self.samples} sample(s))")


def _flag(text: str) -> bool:
    return text.strip() not in ("0", "false", "")


def parse_autotune_log(text: str) -> Optional[AutotuneBest]:
    """The best row of an autotune log, or None when it holds no sample."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return None
    header = [h.strip() for h in rows[0]]
    best: Optional[AutotuneBest] = None
    count = 0
    for row in rows[1:]:
        if len(row) != len(header):
            continue
        values = dict(zip(header, (cell.strip() for cell in row)))
        try:
            candidate = AutotuneBest(
                cycle_time_ms=float(values["cycle_time_ms"]),
                fusion_threshold_mb=float(values["tensor_fusion_threshold"]),
                cache_enabled=_flag(values["cache_enabled"]),
                hierarchical_allreduce=_flag(values["hierarchical_allreduce"]),
                score=float(values["score"]),
                samples=0,
            )
        except (KeyError, ValueError):
            continue
        count += 1
        if best is None or candidate.score > best.score:
            best = candidate
    if best is None:
        return None
    return AutotuneBest(best.cycle_time_ms, best.fusion_threshold_mb, best.cache_enabled,
                        best.hierarchical_allreduce, best.score, count)


def best_of_runs(run_dirs: Sequence[str]) -> Optional[AutotuneBest]:
    """The best sample over the autotune logs of several runs (missing logs are skipped)."""
    best: Optional[AutotuneBest] = None
    total = 0
    for run_dir in run_dirs:
        try:
            with open(os.path.join(run_dir, LOG_FILE), encoding="utf-8") as fh:
                found = parse_autotune_log(fh.read())
        except OSError:
            continue
        if found is None:
            continue
        total += found.samples
        if best is None or found.score > best.score:
            best = found
    if best is None:
        return None
    return AutotuneBest(best.cycle_time_ms, best.fusion_threshold_mb, best.cache_enabled,
                        best.hierarchical_allreduce, best.score, total)
