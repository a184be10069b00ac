"""Horovod's tunables on this machine: cycle time, fusion threshold and response cache, np=2.

The hand-written Horovod loop (scripts/train_hvd.py) trains two models under ``hvdjob run``'s default
launch, once with Horovod's defaults and once per changed tunable, all inside every repeat (rotating
which goes first), so each variant's samples/s is divided by the default's from the same repeat:

* the small model: the suite's MLP (jobs/bench-synthetic.yaml), 6 gradient tensors, about 2 MB;
* the large model: the same data through eight 1024-wide layers, 18 tensors, about 32 MB per step.

hvdjob changes a Horovod default only where this shows a gain beyond the spread of its repeats.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Dict, List, Tuple

from benchmarks.common import MEASURE_HEADERS, Section, SuiteContext, ratio_row, run_rotating, spread_row
from benchmarks.launch import SCRIPTS
from benchmarks.training import managed_training, write_workload
from hvdrun_cli.bench.runner import BenchConfig, run_once
from hvdrun_cli.bench.samples import RunSample
from hvdrun_cli.bench.stats import ratio_spread
from hvdrun_cli.bench.table import Table

KEY = "tunables"
NP = 2
DEFAULT = "Horovod defaults (cycle 1 ms, fusion 128 MiB, cache 1024)"
# label -> the --set values that make the variant (one tunable changed from Horovod's default)
VARIANTS: Dict[str, Tuple[str, ...]] = {
    DEFAULT: (),
    "cycle time 0.2 ms": ("horovod.cycle_time_ms=0.2",),
    "cycle time 5 ms": ("horovod.cycle_time_ms=5",),
    "fusion off (threshold 0)": ("horovod.fusion_threshold_mb=0",),
    "fusion threshold 4 MiB": ("horovod.fusion_threshold_mb=4",),
    "response cache off (capacity 0)": ("horovod.cache_capacity=0",),
}
LARGE_HIDDEN = [1024] * 8
LARGE_STEP_SHARE = 8  # the large model runs 1/8 of the suite's steps: each step is about 20x the math


@dataclass(frozen=True)
class Model:
    name: str
    workload: str  # path of its workload.json


def write_hand_spec(ctx: SuiteContext, model: Model) -> str:
    path = ctx.path(KEY, model.name, "hand-written.yaml")
    spec = {
        "name": f"tunables-{model.name}",
        "framework": "torch",
        "script": str(SCRIPTS / "train_hvd.py"),
        "args": ["--workload", model.workload],
        "resources": {"np": NP},
        "horovod": {"threads_per_rank": 1},
    }
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(spec, fh, indent=2)
    return path


def large_steps(ctx: SuiteContext) -> int:
    return max(10, ctx.steps // LARGE_STEP_SHARE)


def models(ctx: SuiteContext) -> List[Model]:
    train = managed_training()
    small = write_workload(ctx, train, f"{KEY}/small")
    large = write_workload(ctx, train, f"{KEY}/large", {"hidden": LARGE_HIDDEN, "steps": large_steps(ctx)})
    return [Model("small", small), Model("large", large)]


def measure(ctx: SuiteContext, model: Model) -> Dict[str, List[RunSample]]:
    spec = write_hand_spec(ctx, model)
    configs = {label: BenchConfig(spec_path=spec, nps=(NP,), out_dir=ctx.folder(KEY, model.name, f"v{i}"),
                                  repeats=ctx.repeats, set_options=sets)
               for i, (label, sets) in enumerate(VARIANTS.items())}
    return run_rotating(ctx, f"{KEY} {model.name}",
                        {label: (lambda repeat, c=config: run_once(c, NP, repeat)) for label, config in configs.items()})


def run(ctx: SuiteContext) -> Section:
    rows: List[tuple] = []
    raw: Dict[str, Dict[str, List[float]]] = {}
    best: Dict[str, str] = {}
    changed = [label for label in VARIANTS if label != DEFAULT]
    for model in models(ctx):
        samples = measure(ctx, model)
        thr = {label: [s.samples_per_sec for s in samples[label]] for label in VARIANTS}
        raw[model.name] = thr
        rows.append(spread_row(f"{model.name} model: {DEFAULT}", "samples/s", thr[DEFAULT], 0))
        rows += [ratio_row(f"{model.name} model: {label} ÷ defaults", thr[label], thr[DEFAULT]) for label in changed]
        gain = {label: ratio_spread(thr[label], thr[DEFAULT]).median for label in changed}
        best[model.name] = max(gain, key=gain.__getitem__)
    train = managed_training()
    return Section(
        key=KEY,
        title=f"Horovod tunables, hand-written Horovod loop, np={NP}, hvdjob's default launch (higher is better)",
        table=Table(MEASURE_HEADERS, tuple(rows)),
        notes=[
            f"small model: hidden {list(train.model_args.get('hidden', []))}, {ctx.steps} steps; large model: "
            f"hidden {LARGE_HIDDEN}, {large_steps(ctx)} steps; batch {train.batch_size} per rank",
            "each ratio divides a variant's samples/s by the defaults' from the same repeat; highest median: "
            + ", ".join(f"{name} model: {label}" for name, label in best.items()),
        ],
        raw={"samples_per_sec": raw},
    )
