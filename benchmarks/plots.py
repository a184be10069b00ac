"""PNG charts of the suite's results (matplotlib, Agg backend: no display needed)."""
from __future__ import annotations

from typing import Dict, List, Sequence

from hvdrun_cli.bench.stats import spread


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _bars(path: str, title: str, ylabel: str, values: Dict[str, List[float]]) -> str:
    """Median bars with min-max whiskers, one per variant."""
    plt = _pyplot()
    labels = list(values)
    spreads = [spread(values[label]) for label in labels]
    fig, ax = plt.subplots(figsize=(7.0, 3.8), dpi=120)
    ax.bar(range(len(labels)), [s.median for s in spreads],
           yerr=[[s.median - s.min for s in spreads], [s.max - s.median for s in spreads]], capsize=5,
           color="tab:blue")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels([label.replace(" (", "\n(") for label in labels], fontsize=7)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def startup(path: str, seconds: Dict[str, List[float]]) -> str:
    return _bars(path, "launch to first step, np=2 (median, min-max)", "seconds", seconds)


def training(path: str, samples_per_sec: Dict[str, List[float]]) -> str:
    return _bars(path, "training throughput (median, min-max)", "samples/s", samples_per_sec)


def bandwidth(path: str, sizes_mib: Sequence[int], bytes_per_sec: Dict[str, Dict[str, List[float]]]) -> str:
    """GB/s against message size, log-2 axis, one line per variant."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=120)
    for variant, by_size in bytes_per_sec.items():
        spreads = [spread(by_size[str(size)]).scaled(1e-9) for size in sizes_mib]
        ax.errorbar(list(sizes_mib), [s.median for s in spreads],
                    yerr=[[s.median - s.min for s in spreads], [s.max - s.median for s in spreads]],
                    marker="o", capsize=4, label=variant)
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(sizes_mib))
    ax.set_xticklabels([f"{s} MiB" for s in sizes_mib])
    ax.set_ylabel("GB/s")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    ax.set_title("allreduce (np=2, Gloo) vs memcpy (1 process)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
