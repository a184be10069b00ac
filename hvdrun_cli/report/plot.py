"""The report PNG: loss, accuracy and samples/s per step, and a per-rank timing panel.

matplotlib is imported only here, with the Agg backend (no display); ``hvdjob report --json`` and
the rest of hvdjob never need it.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

NOT_RECORDED = "not recorded"


class MatplotlibMissing(RuntimeError):
    pass


def _points(steps: Sequence[Any], values: Sequence[Any]) -> Tuple[List[float], List[float]]:
    pairs = [(float(s), float(v)) for s, v in zip(steps, values)
             if isinstance(s, (int, float)) and isinstance(v, (int, float))]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _curve_panel(ax: Any, title: str, lines: Sequence[Tuple[str, Sequence[Any], Sequence[Any], str]]) -> None:
    drawn = False
    for label, steps, values, style in lines:
        xs, ys = _points(steps, values)
        if xs:
            ax.plot(xs, ys, style, label=label, markersize=4)
            drawn = True
    ax.set_title(title)
    ax.set_xlabel("step")
    ax.grid(True, alpha=0.3)
    if drawn:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, NOT_RECORDED, ha="center", va="center", transform=ax.transAxes, color="gray")


def _rank_panel(ax: Any, numbers: Dict[str, Any]) -> None:
    ranks = numbers["ranks"]
    ax.set_title("per rank: median time per step")
    if not ranks:
        ax.text(0.5, 0.5, f"rank timing {NOT_RECORDED}", ha="center", va="center", transform=ax.transAxes,
                color="gray")
        return
    balance = numbers["imbalance"]
    slowest = balance["slowest_rank"] if balance else None
    xs = list(range(len(ranks)))
    width = 0.4
    step_ms = [(r["step_time_s"] or 0.0) * 1000 for r in ranks]
    colors = ["tab:red" if r["rank"] == slowest else "tab:blue" for r in ranks]
    ax.bar([x - width / 2 for x in xs], step_ms, width, color=colors, label="step time")
    if numbers["allreduce_wait_recorded"]:
        wait_ms = [(r["allreduce_wait_s"] or 0.0) * 1000 for r in ranks]
        ax.bar([x + width / 2 for x in xs], wait_ms, width, color="tab:orange", label="waiting in allreduce")
    else:
        ax.text(0.5, 0.92, f"allreduce wait: {NOT_RECORDED}\nslowest rank: {NOT_RECORDED}", ha="center",
                va="top", transform=ax.transAxes, color="gray", fontsize=9,
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8})
    ax.set_xticks(xs)
    ax.set_xticklabels([str(r["rank"]) for r in ranks])
    ax.set_xlabel("rank" + (" (red: slowest)" if slowest is not None else ""))
    ax.set_ylabel("ms per step")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(True, axis="y", alpha=0.3)
    if balance:
        ax.set_title(f"per rank: median time per step\n{balance['text']}", fontsize=9)


def _headline(numbers: Dict[str, Any]) -> str:
    parts = [str(numbers["name"]), os.path.basename(numbers["run_dir"])]
    if numbers.get("status"):
        parts.append(str(numbers["status"]))
    if numbers.get("steps") is not None:
        parts.append(f"{numbers['steps']} steps")
    if numbers.get("world_size"):
        parts.append(f"{numbers['world_size']} ranks")
    if numbers.get("best_val_accuracy") is not None:
        parts.append(f"best validation accuracy {numbers['best_val_accuracy']:.4f}")
    return " | ".join(parts)


def write_report_png(numbers: Dict[str, Any], path: str) -> str:
    """Draw the four panels of one run into ``path``; raises MatplotlibMissing without matplotlib."""
    try:
        import matplotlib
    except ImportError as exc:
        raise MatplotlibMissing("hvdjob report needs matplotlib: pip install 'hvdjob[report]'") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train, val = numbers["train"], numbers["validation"]
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    try:
        _curve_panel(axes[0][0], "loss", [("train", train["step"], train["loss"], "-"),
                                          ("validation", val["step"], val["val_loss"], "o-")])
        _curve_panel(axes[0][1], "accuracy", [("train", train["step"], train["accuracy"], "-"),
                                              ("validation", val["step"], val["val_accuracy"], "o-")])
        _curve_panel(axes[1][0], "samples/s (all ranks)", [("train", train["step"], train["samples_per_sec"], "-")])
        _rank_panel(axes[1][1], numbers)
        fig.suptitle(_headline(numbers), fontsize=11)
        fig.tight_layout()
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path


def default_png_path(run_dir: str, explicit: Optional[str]) -> str:
    return explicit or os.path.join(run_dir, "report.png")
