"""From run samples to one row per rank count: throughput, scaling efficiency and start-up spreads.

Efficiency is paired by repeat: repeat r's run at np is divided by repeat r's run at the base rank
count, because the runs of one repeat happened back to back under the same background load.
The base is np=1 when measured, else the smallest rank count measured (and the rows say so).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from hvdrun_cli.bench.samples import RunSample
from hvdrun_cli.bench.stats import Spread, optional_spread, scaling_efficiency, spread


@dataclass(frozen=True)
class NpResult:
    np: int
    throughput: Spread  # samples/s, whole job
    efficiency: Spread  # vs base_np; exactly 1.0 for the base row itself
    base_np: int
    time_to_first_step: Spread  # seconds from the bench's launch to rank 0's first step
    launch_to_rank_start: Optional[Spread]
    rank_start_to_first_step: Optional[Spread]
    wall: Spread

    def to_dict(self) -> Dict[str, Any]:
        def maybe(value: Optional[Spread]) -> Optional[Dict[str, float]]:
            return value.to_dict() if value else None

        return {
            "np": self.np,
            "samples_per_sec": self.throughput.to_dict(),
            "scaling_efficiency": self.efficiency.to_dict(),
            "efficiency_base_np": self.base_np,
            "time_to_first_step_s": self.time_to_first_step.to_dict(),
            "launch_to_rank_start_s": maybe(self.launch_to_rank_start),
            "rank_start_to_first_step_s": maybe(self.rank_start_to_first_step),
            "wall_s": self.wall.to_dict(),
        }


def _by_np(samples: Sequence[RunSample]) -> Dict[int, List[RunSample]]:
    groups: Dict[int, List[RunSample]] = {}
    for sample in sorted(samples, key=lambda s: (s.np, s.repeat)):
        groups.setdefault(sample.np, []).append(sample)
    return groups


def analyze(samples: Sequence[RunSample]) -> List[NpResult]:
    """One result per rank count, in ascending np; raises ValueError for no samples."""
    groups = _by_np(samples)
    if not groups:
        raise ValueError("no runs to analyse")
    base_np = 1 if 1 in groups else min(groups)
    base = {s.repeat: s.samples_per_sec for s in groups[base_np]}
    results = []
    for np, runs in groups.items():
        efficiencies = [
            scaling_efficiency(s.samples_per_sec, np, base[s.repeat], base_np) for s in runs if s.repeat in base
        ]
        results.append(
            NpResult(
                np=np,
                throughput=spread([s.samples_per_sec for s in runs]),
                efficiency=spread(efficiencies),
                base_np=base_np,
                time_to_first_step=spread([s.time_to_first_step_s for s in runs]),
                launch_to_rank_start=optional_spread([s.launch_to_rank_start_s for s in runs]),
                rank_start_to_first_step=optional_spread([s.rank_start_to_first_step_s for s in runs]),
                wall=spread([s.wall_s for s in runs]),
            )
        )
    return results
