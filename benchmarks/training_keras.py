"""Keras training throughput, the TensorFlow peer of :mod:`benchmarks.training`, np=2, one thread per rank:

* hvdjob's managed Keras loop (jobs/bench-synthetic.yaml with ``framework: tensorflow``);
* a hand-written Horovod Keras loop (``model.fit`` + ``DistributedOptimizer``), started by ``hvdjob run``;
* ``tf.distribute.MultiWorkerMirroredStrategy``: two local worker processes on loopback ports.

Same MLP, synthetic data, batch per rank, SGD (lr, momentum) and steps for all three. All three run
inside every repeat (rotating which goes first). Throughput is samples per second of all ranks
from the first step to the end of training, as each program reports it.
"""
from __future__ import annotations

import json
import os
from typing import Dict, Iterable, List, Optional, Tuple

from benchmarks import mwms
from benchmarks.common import MEASURE_HEADERS, Section, SuiteContext, ratio_row, run_rotating, spread_row
from benchmarks.launch import SCRIPTS, TIMEOUT_S, job_env
from benchmarks.training import JOB, managed_training, write_workload
from hvdrun_cli.bench.runner import BenchConfig, read_summary, run_once
from hvdrun_cli.bench.samples import RunSample, sample_from_summary
from hvdrun_cli.bench.stats import optional_spread, rate_after, ratio_spread
from hvdrun_cli.bench.table import Table, fmt_spread
from hvdrun_cli.contract import METRICS_FILE

KEY = "keras"
NP = 2
THREADS = 1  # per rank/worker: intra-op pool; MWMS's inter-op pool too (hvdjob gives its ranks 2)
FRAMEWORK = "framework=tensorflow"  # the torch bench job, switched: one place for the workload's numbers
MANAGED = "hvdjob managed Keras loop"
HAND = "hand-written Horovod Keras loop (hvdjob run)"
MWMS = "tf.distribute MultiWorkerMirroredStrategy (2 local workers)"
VARIANTS = (MANAGED, HAND, MWMS)


def write_hand_spec(ctx: SuiteContext, workload: str) -> str:
    path = ctx.path(KEY, "hand-written.yaml")
    spec = {
        "name": "hand-written-keras",
        "framework": "tensorflow",
        "script": str(SCRIPTS / "train_hvd_keras.py"),
        "args": ["--workload", workload],
        "resources": {"np": NP},
        "horovod": {"threads_per_rank": THREADS},
    }
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(spec, fh, indent=2)
    return path


def train_marks(lines: Iterable[str]) -> List[Tuple[int, float]]:
    """(steps done, unix time) of each progress window in a managed run's metrics.jsonl."""
    marks = []
    for line in lines:
        record = json.loads(line) if line.strip() else {}
        if record.get("kind") == "train":
            marks.append((int(record["step"]), float(record["time"])))
    return marks


def steady_rate(sample: RunSample, from_step: int, samples_per_step: int) -> Optional[float]:
    """Samples/s after ``from_step`` steps: the scripts write it; the managed run's windows give it."""
    summary = read_summary(sample.run_dir)
    if "steady_samples_per_sec" in summary:
        value = summary["steady_samples_per_sec"]
        return float(value) if value is not None else None
    path = os.path.join(sample.run_dir, METRICS_FILE)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as fh:
        return rate_after(train_marks(fh), from_step, samples_per_step)


def launchers_used(runs: Iterable[RunSample]) -> str:
    """Which launcher (and so data plane) hvdjob chose for these runs, from their plan.json."""
    names = set()
    for sample in runs:
        try:
            with open(os.path.join(sample.run_dir, "plan.json"), encoding="utf-8") as fh:
                names.add(str(json.load(fh).get("launcher", "?")))
        except (OSError, ValueError):
            names.add("?")
    return ", ".join(sorted(names))


def optional_ratio_row(label: str, top: List[Optional[float]], bottom: List[Optional[float]]) -> tuple:
    pairs = [(a, b) for a, b in zip(top, bottom) if a is not None and b is not None]
    spread_ = ratio_spread([a for a, _ in pairs], [b for _, b in pairs]) if pairs else None
    return (label, "ratio", fmt_spread(spread_, 2))


def run_mwms(ctx: SuiteContext, workload: str, repeat: int) -> RunSample:
    """Both workers at once on fresh loopback ports; worker 0 writes summary.json."""
    where = ctx.folder(KEY, "mwms", f"r{repeat + 1}")
    done = ctx.folder(KEY, "mwms", f"r{repeat + 1}", "done")
    ports = mwms.free_ports(NP)
    script = str(SCRIPTS / "train_mwms.py")
    argvs = [mwms.worker_argv(script, workload, f"{where}/summary.json", done, THREADS, THREADS) for _ in ports]
    envs = [mwms.worker_env(job_env(), mwms.tf_config(ports, i), THREADS, THREADS) for i in range(NP)]
    logs = [f"{where}/worker{i}.log" for i in range(NP)]
    launched = mwms.run_group(argvs, envs, logs, timeout_s=TIMEOUT_S)
    return sample_from_summary(read_summary(where), np=NP, repeat=repeat, launch_unix_time=launched.launch_unix_time,
                               wall_s=launched.wall_s, run_dir=where)


def run(ctx: SuiteContext) -> Section:
    train = managed_training()
    warm = train.log_interval  # the managed run's first progress window: its first steady mark
    workload = write_workload(ctx, train, KEY, {"steady_from_step": warm})
    managed = BenchConfig(spec_path=JOB, nps=(NP,), out_dir=ctx.folder(KEY, "managed"), repeats=ctx.repeats,
                          steps=ctx.steps, set_options=(FRAMEWORK,))
    hand = BenchConfig(spec_path=write_hand_spec(ctx, workload), nps=(NP,), out_dir=ctx.folder(KEY, "hand"),
                       repeats=ctx.repeats)
    samples: Dict[str, List[RunSample]] = run_rotating(ctx, KEY, {
        MANAGED: lambda repeat: run_once(managed, NP, repeat),
        HAND: lambda repeat: run_once(hand, NP, repeat),
        MWMS: lambda repeat: run_mwms(ctx, workload, repeat),
    })
    thr = {v: [s.samples_per_sec for s in samples[v]] for v in VARIANTS}
    per_step = train.batch_size * NP
    steady = {v: [steady_rate(s, warm, per_step) for s in samples[v]] for v in VARIANTS}
    pairs = ((MANAGED, HAND, "managed ÷ hand-written Horovod"), (MANAGED, MWMS, "managed ÷ MWMS"),
             (HAND, MWMS, "hand-written Horovod ÷ MWMS"))
    rows = [spread_row(v, "samples/s", thr[v], 0) for v in VARIANTS]
    rows += [ratio_row(f"{label} (throughput)", thr[top], thr[bottom]) for top, bottom, label in pairs]
    rows += [(f"after step {warm}: {v}", "samples/s", fmt_spread(optional_spread(steady[v]), 0)) for v in VARIANTS]
    rows += [optional_ratio_row(f"{label} (after step {warm})", steady[top], steady[bottom])
             for top, bottom, label in pairs]
    first = {v: [s.time_to_first_step_s for s in samples[v]] for v in VARIANTS}
    rows += [spread_row(f"launch to first step: {v}", "s", first[v], 2) for v in VARIANTS]
    batch = train.batch_size
    steady_median = {v: optional_spread(steady[v]) for v in VARIANTS}
    step_ms = {v: f"{1000 * batch * NP / m.median:.1f} ms" if m else "n/a" for v, m in steady_median.items()}
    return Section(
        key=KEY,
        title=f"Keras training throughput, small MLP on synthetic data, np={NP}, {ctx.steps} steps (higher is better)",
        table=Table(MEASURE_HEADERS, tuple(rows)),
        notes=[
            f"one step = {batch} samples per rank (MWMS: global batch {batch * NP}); median time per step after "
            f"step {warm}: " + ", ".join(f"{v} {ms}" for v, ms in step_ms.items()),
            "throughput counts from the first batch's begin, as in the PyTorch section, so it includes Keras tracing "
            f"its step function (seconds, under load most of a short run); 'after step {warm}' leaves that out "
            f"(managed: from its progress windows, every {warm} steps; the others time the same steps)",
            "managed: the model's compiled train function per batch, hvdjob's engine around it, index-gather input pipeline; "
            "hand-written: one model.fit, DistributedOptimizer, BroadcastGlobalVariablesCallback, "
            "from_tensor_slices + shard + shuffle pipeline",
            "MWMS: TensorFlow's idiomatic path, model.fit under strategy.scope() with a DatasetCreator (per-worker "
            "shard, per-replica batch); collectives over gRPC on loopback; intra-op and inter-op pools of "
            f"{THREADS} thread, not bound to a CPU (hvdjob ranks: 1 intra-op, 2 inter-op threads, bound to a core "
            "by hvdjob unless the machine is busy)",
            "hvdjob's default launcher for these runs: "
            + launchers_used(samples[MANAGED] + samples[HAND]) + " (mpi: Horovod's MPI operations)",
        ],
        raw={
            "samples_per_sec": thr,
            "steady_samples_per_sec": steady,
            "steady_from_step": warm,
            "time_to_first_step_s": first,
            "runs": {v: [s.to_dict() for s in samples[v]] for v in VARIANTS},
        },
    )
