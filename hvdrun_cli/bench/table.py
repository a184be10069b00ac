"""Tables of results as aligned plain text (terminal) or GitHub markdown (README).

Every measured cell shows ``min / median / max`` so a reader sees the noise next to the number.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from hvdrun_cli.bench.analysis import NpResult
from hvdrun_cli.bench.stats import Spread

SPREAD_NOTE = "each cell: min / median / max over repeats"


def fmt_value(value: float, digits: int) -> str:
    """Fixed decimals; thousands separators for big numbers so throughputs read at a glance."""
    return f"{value:,.{digits}f}"


def fmt_spread(value: Optional[Spread], digits: int = 2) -> str:
    if value is None:
        return "n/a"
    return " / ".join(fmt_value(v, digits) for v in (value.min, value.median, value.max))


@dataclass(frozen=True)
class Table:
    headers: Tuple[str, ...]
    rows: Tuple[Tuple[str, ...], ...]

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.headers):
                raise ValueError(f"row {row!r} has {len(row)} cells, the table {len(self.headers)} columns")

    def markdown(self) -> str:
        def line(cells: Sequence[str]) -> str:
            return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

        out = [line(self.headers), "|" + "|".join("---" for _ in self.headers) + "|"]
        out += [line(row) for row in self.rows]
        return "\n".join(out)

    def text(self) -> str:
        widths = [max(len(cell) for cell in column) for column in zip(self.headers, *self.rows)]

        def line(cells: Sequence[str]) -> str:
            return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()

        out = [line(self.headers), line(["-" * w for w in widths])]
        out += [line(row) for row in self.rows]
        return "\n".join(out)


def bench_table(results: Sequence[NpResult]) -> Table:
    """The ``hvdjob bench`` table: one row per rank count."""
    base = results[0].base_np if results else 1
    headers = (
        "np",
        "samples/s",
        f"efficiency vs np={base}",
        "launch to first step (s)",
        "of which rank start to first step (s)",
    )
    rows: List[Tuple[str, ...]] = []
    for r in results:
        rows.append(
            (
                str(r.np),
                fmt_spread(r.throughput, 0),
                fmt_spread(r.efficiency, 2),
                fmt_spread(r.time_to_first_step, 2),
                fmt_spread(r.rank_start_to_first_step, 2),
            )
        )
    return Table(headers, tuple(rows))
