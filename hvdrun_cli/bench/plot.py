"""Throughput and scaling efficiency against rank count: the data (pure) and the PNG (matplotlib).

matplotlib is imported only inside :func:`write_plot`, with the Agg backend (no display needed), so
``hvdjob`` itself never pays for it and a machine without it still gets ``bench.json``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Tuple

from hvdrun_cli.bench.analysis import NpResult


@dataclass(frozen=True)
class Series:
    """One line with error bars: medians, and the distance down to min and up to max."""

    label: str
    x: Tuple[int, ...]
    median: Tuple[float, ...]
    below: Tuple[float, ...]  # median - min
    above: Tuple[float, ...]  # max - median


@dataclass(frozen=True)
class PlotData:
    title: str
    throughput: Series
    efficiency: Series
    ideal_efficiency: float = 1.0


def plot_data(results: Sequence[NpResult], title: str) -> PlotData:
    """What the PNG shows; raises ValueError for no results."""
    if not results:
        raise ValueError("nothing to plot")
    xs = tuple(r.np for r in results)

    def series(label: str, spreads: list) -> Series:
        return Series(
            label=label,
            x=xs,
            median=tuple(s.median for s in spreads),
            below=tuple(s.median - s.min for s in spreads),
            above=tuple(s.max - s.median for s in spreads),
        )

    base = results[0].base_np
    return PlotData(
        title=title,
        throughput=series("samples/s (median, min-max bars)", [r.throughput for r in results]),
        efficiency=series(f"scaling efficiency vs np={base}", [r.efficiency for r in results]),
    )


def write_plot(data: PlotData, path: str) -> str:
    """Draw throughput (left axis) and efficiency (right axis) against np into a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, left = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    thr = data.throughput
    left.errorbar(thr.x, thr.median, yerr=[thr.below, thr.above], marker="o", capsize=4, color="tab:blue",
                  label=thr.label)
    left.set_xlabel("ranks (np)")
    left.set_ylabel("samples/s", color="tab:blue")
    left.set_xticks(list(thr.x))
    left.set_ylim(bottom=0)
    right = left.twinx()
    eff = data.efficiency
    right.errorbar(eff.x, eff.median, yerr=[eff.below, eff.above], marker="s", capsize=4, color="tab:orange",
                   label=eff.label)
    right.axhline(data.ideal_efficiency, color="tab:orange", linestyle=":", linewidth=1)
    right.set_ylabel("scaling efficiency", color="tab:orange")
    right.set_ylim(0, max(1.1, max(m + a for m, a in zip(eff.median, eff.above)) * 1.05))
    handles = left.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    labels = left.get_legend_handles_labels()[1] + right.get_legend_handles_labels()[1]
    left.legend(handles, labels, loc="lower left", fontsize=8)
    left.set_title(data.title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
