"""Training throughput on the same small MLP and synthetic data, np=2, one thread per rank:

* hvdjob's managed loop vs a hand-written Horovod loop, both started by ``hvdjob run``;
* hvdjob (Horovod, Gloo) vs ``torchrun`` + DistributedDataParallel (gloo backend);
* the managed loop at np=1 vs np=2: scaling efficiency ``thr(2) / (2 * thr(1))``.

All four runs happen inside every repeat (rotating which goes first). Throughput is samples per
second of all ranks from the first step to the end of training, as each program reports it.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional

from benchmarks.common import MEASURE_HEADERS, Section, SuiteContext, ratio_row, run_rotating, spread_row
from benchmarks.launch import SCRIPTS, job_env, timed, torchrun_argv
from hvdrun_cli.bench.runner import BenchConfig, read_summary, run_once
from hvdrun_cli.bench.samples import RunSample, sample_from_summary
from hvdrun_cli.bench.stats import scaling_efficiency, spread
from hvdrun_cli.bench.table import Table, fmt_spread
from hvdrun_cli.spec import load_spec
from hvdrun_cli.spec.model import TrainSpec

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JOB = os.path.join(REPO, "jobs", "bench-synthetic.yaml")
NP = 2
MANAGED = "hvdjob managed loop"
HAND = "hand-written Horovod loop (hvdjob run)"
DDP = "torchrun + DDP (gloo)"
MANAGED_NP1 = "hvdjob managed loop, np=1"
VARIANTS = (MANAGED, HAND, DDP, MANAGED_NP1)


def managed_training() -> TrainSpec:
    train = load_spec(JOB).train
    if train is None:
        raise ValueError(f"{JOB} must be a managed job (train:)")
    return train


def write_workload(ctx: SuiteContext, train: TrainSpec, folder: str = "training",
                   extra: Optional[Dict[str, Any]] = None) -> str:
    """The managed job's numbers for the hand-written loops (see scripts/workload.py), in ``folder``."""
    workload = {
        "hidden": list(train.model_args.get("hidden", [64])),
        "data_args": dict(train.data_args),
        "batch_size": train.batch_size,
        "lr": train.lr,
        "momentum": train.momentum,
        "seed": train.seed,
        "steps": ctx.steps,
        **(extra or {}),
    }
    path = ctx.path(folder, "workload.json")
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(workload, fh, indent=2)
    return path


def write_hand_spec(ctx: SuiteContext, workload: str) -> str:
    path = ctx.path("training", "hand-written.yaml")
    spec = {
        "name": "hand-written",
        "framework": "torch",
        "script": str(SCRIPTS / "train_hvd.py"),
        "args": ["--workload", workload],
        "resources": {"np": NP},
        "horovod": {"threads_per_rank": 1},
    }
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(spec, fh, indent=2)
    return path


def run_ddp(ctx: SuiteContext, workload: str, repeat: int) -> RunSample:
    where = ctx.folder("training", "ddp", f"r{repeat + 1}")
    argv = torchrun_argv(NP, str(SCRIPTS / "train_ddp.py"), ["--workload", workload, "--out", f"{where}/summary.json"])
    launched = timed(argv, f"{where}/console.log", env=job_env())
    return sample_from_summary(read_summary(where), np=NP, repeat=repeat, launch_unix_time=launched.launch_unix_time,
                               wall_s=launched.wall_s, run_dir=where)


def run(ctx: SuiteContext) -> Section:
    train = managed_training()
    workload = write_workload(ctx, train)
    managed = BenchConfig(spec_path=JOB, nps=(1, NP), out_dir=ctx.folder("training", "managed"),
                          repeats=ctx.repeats, steps=ctx.steps)
    hand = BenchConfig(spec_path=write_hand_spec(ctx, workload), nps=(NP,), out_dir=ctx.folder("training", "hand"),
                       repeats=ctx.repeats)
    samples: Dict[str, List[RunSample]] = run_rotating(ctx, "training", {
        MANAGED: lambda repeat: run_once(managed, NP, repeat),
        HAND: lambda repeat: run_once(hand, NP, repeat),
        DDP: lambda repeat: run_ddp(ctx, workload, repeat),
        MANAGED_NP1: lambda repeat: run_once(managed, 1, repeat),
    })
    thr = {v: [s.samples_per_sec for s in samples[v]] for v in VARIANTS}
    efficiency = [scaling_efficiency(two, NP, one) for two, one in zip(thr[MANAGED], thr[MANAGED_NP1])]
    rows = [spread_row(v, "samples/s", thr[v], 0) for v in VARIANTS]
    rows += [
        ratio_row("managed ÷ hand-written (throughput)", thr[MANAGED], thr[HAND]),
        ratio_row("hvdjob managed ÷ torchrun DDP (throughput)", thr[MANAGED], thr[DDP]),
        ratio_row("hand-written Horovod ÷ torchrun DDP (throughput)", thr[HAND], thr[DDP]),
        ("scaling efficiency np=1 → np=2, managed, 1 thread/rank", "thr(2)/(2·thr(1))",
         fmt_spread(spread(efficiency), 2)),
    ]
    first = {v: [s.time_to_first_step_s for s in samples[v]] for v in VARIANTS}
    batch = train.batch_size
    step_ms = {v: 1000 * batch * (1 if v == MANAGED_NP1 else NP) / spread(thr[v]).median for v in VARIANTS}
    rows += [spread_row(f"launch to first step: {v}", "s", first[v], 2) for v in (MANAGED, HAND, DDP)]
    return Section(
        key="training",
        title=f"Training throughput, small MLP on synthetic data, np={NP}, {ctx.steps} steps (higher is better)",
        table=Table(MEASURE_HEADERS, tuple(rows)),
        notes=[
            f"one step = {batch} samples per rank; median time per step: "
            + ", ".join(f"{v} {ms:.1f} ms" for v, ms in step_ms.items()),
            "managed loop per step: lr update and the batch's loss added into the metric window's sum, its "
            "class scores and labels copied into the window's buffers (scored every 16 batches); a stop-flag "
            "allreduce every 10 steps and the window's every log_interval steps, both overlapped with the next step; a checkpoint at the end (not in its samples/s)",
            "hand-written loops: DistributedOptimizer (or DDP), nothing else; same model, data, batch and sharding",
        ],
        raw={
            "samples_per_sec": thr,
            "scaling_efficiency": efficiency,
            "time_to_first_step_s": first,
            "runs": {v: [s.to_dict() for s in samples[v]] for v in VARIANTS},
        },
    )
