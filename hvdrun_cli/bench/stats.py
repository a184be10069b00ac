"""Summaries over repeats: min / median / max, and ratios paired by repeat.

Benchmarks on a shared machine are noisy, so every number is reported as a spread over repeats
rather than one value. Compared variants run interleaved inside each repeat; pairing their values
by repeat index (instead of dividing two medians) cancels noise that hit both alike.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple


@dataclass(frozen=True)
class Spread:
    """Minimum, median and maximum of ``n`` measured values."""

    min: float
    median: float
    max: float
    n: int

    def to_dict(self) -> Dict[str, float]:
        return {"min": self.min, "median": self.median, "max": self.max, "n": self.n}

    def scaled(self, factor: float) -> "Spread":
        """The same spread in other units (e.g. bytes/s -> MiB/s); a negative factor is refused."""
        if factor < 0:
            raise ValueError("scale factor must not be negative")
        return Spread(self.min * factor, self.median * factor, self.max * factor, self.n)


def spread(values: Sequence[float]) -> Spread:
    """Spread of ``values``; raises ValueError when there are none (nothing was measured)."""
    if not values:
        raise ValueError("no values to summarise")
    ordered = sorted(float(v) for v in values)
    return Spread(ordered[0], float(statistics.median(ordered)), ordered[-1], len(ordered))


def optional_spread(values: Sequence[Optional[float]]) -> Optional[Spread]:
    """Spread of the values that exist; None when none do."""
    present = [v for v in values if v is not None]
    return spread(present) if present else None


def paired_ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list:
    """``numerators[i] / denominators[i]`` for each repeat i (both lists are in repeat order)."""
    if len(numerators) != len(denominators):
        raise ValueError(f"cannot pair {len(numerators)} values with {len(denominators)}")
    ratios = []
    for top, bottom in zip(numerators, denominators):
        if bottom == 0:
            raise ValueError("cannot divide by a zero measurement")
        ratios.append(float(top) / float(bottom))
    return ratios


def ratio_spread(numerators: Sequence[float], denominators: Sequence[float]) -> Spread:
    """Spread of the per-repeat ratios."""
    return spread(paired_ratios(numerators, denominators))


def scaling_efficiency(throughput: float, np: int, base_throughput: float, base_np: int = 1) -> float:
    """``thr(np) / ((np / base_np) * thr(base_np))``: 1.0 is perfect linear scaling.

    With ``base_np = 1`` this is the usual ``thr(np) / (np * thr(1))``.
    """
    if np < 1 or base_np < 1:
        raise ValueError("rank counts must be at least 1")
    if base_throughput <= 0:
        raise ValueError("base throughput must be positive")
    return float(throughput) / ((np / base_np) * float(base_throughput))


def rate_after(marks: Sequence[Tuple[int, float]], from_step: int, samples_per_step: float) -> Optional[float]:
    """Samples/s from the end of step ``from_step`` to the last mark; None when no steps follow it.

    ``marks`` are (steps done, unix time) pairs in order. Keras traces its step function during the
    first step, which can dwarf a short run's training; this rate leaves that start-up out.
    """
    start = next(((step, t) for step, t in marks if step >= from_step), None)
    if start is None or not marks or marks[-1][0] <= start[0] or marks[-1][1] <= start[1]:
        return None
    end = marks[-1]
    return (end[0] - start[0]) * samples_per_step / (end[1] - start[1])
