"""What every benchmark shares: the output folder, the repeat order, and result sections."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Sequence, TypeVar

from hvdrun_cli.bench.stats import ratio_spread, spread
from hvdrun_cli.bench.table import Table, fmt_spread

T = TypeVar("T")


@dataclass(frozen=True)
class SuiteContext:
    out_dir: str  # benchmarks/results/<timestamp>
    repeats: int
    steps: int  # training steps per throughput run
    say: Callable[[str], None] = print

    def path(self, *parts: str) -> str:
        """A file under the output folder (its directory created)."""
        path = os.path.join(self.out_dir, *parts)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    def folder(self, *parts: str) -> str:
        """A directory under the output folder, created."""
        path = os.path.join(self.out_dir, *parts)
        os.makedirs(path, exist_ok=True)
        return path


@dataclass
class Section:
    """One benchmark's result: a table for the README, raw values for results.json, a plot."""

    key: str
    title: str
    table: Table
    notes: List[str] = field(default_factory=list)
    raw: Dict[str, Any] = field(default_factory=dict)
    plot: str = ""  # path of the PNG, once drawn

    def to_dict(self) -> Dict[str, Any]:
        return {"title": self.title, "headers": list(self.table.headers), "rows": [list(r) for r in self.table.rows],
                "notes": self.notes, "raw": self.raw, "plot": self.plot}

    def markdown(self) -> str:
        lines = [f"**{self.title}**", "", self.table.markdown()]
        lines += [""] + [f"- {note}" for note in self.notes] if self.notes else []
        return "\n".join(lines)


def rotate(items: Sequence[T], repeat: int) -> List[T]:
    """The compared variants in the order repeat ``repeat`` runs them: each one leads once in turn.

    Running all variants inside every repeat puts them under the same background load; rotating
    who goes first keeps a drift during the repeat from favouring one of them.
    """
    if not items:
        return []
    shift = repeat % len(items)
    return list(items[shift:]) + list(items[:shift])


def run_rotating(ctx: "SuiteContext", key: str, runners: Dict[str, Callable[[int], Any]]) -> Dict[str, List[Any]]:
    """Every variant once per repeat, in :func:`rotate` order; ``runners[variant](repeat)`` returns a
    sample with ``samples_per_sec`` and ``time_to_first_step_s``, reported as it comes."""
    variants = list(runners)
    samples: Dict[str, List[Any]] = {v: [] for v in variants}
    for repeat in range(ctx.repeats):
        for variant in rotate(variants, repeat):
            sample = runners[variant](repeat)
            samples[variant].append(sample)
            ctx.say(f"{key}: repeat {repeat + 1}/{ctx.repeats}: {variant}: {sample.samples_per_sec:,.0f} samples/s, "
                    f"first step {sample.time_to_first_step_s:.2f} s after launch")
    return samples


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def spread_row(label: str, unit: str, values: Sequence[float], digits: int) -> tuple:
    return (label, unit, fmt_spread(spread(values), digits))


def ratio_row(label: str, top: Sequence[float], bottom: Sequence[float], digits: int = 2) -> tuple:
    return (label, "ratio", fmt_spread(ratio_spread(top, bottom), digits))


MEASURE_HEADERS = ("measured", "unit", "min / median / max")
