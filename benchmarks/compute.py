"""Compute-bound efficiency: a small conv net (32x32 images, batch 128 per rank), np=2 under ``hvdjob run``
(default placement and data plane, no spec tuning) against the machine's compute-only limit measured in
the same run: two single-thread processes at once, each pinned to its own CPU, with no communication.

Efficiency = samples/s of the np=2 job / the sum of the two pinned processes' samples/s.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Dict, List

from benchmarks.common import MEASURE_HEADERS, Section, SuiteContext, ratio_row, rotate, spread_row
from benchmarks.launch import SCRIPTS, hvdjob_argv, job_env, read_json, set_args, timed
from hvdrun_cli.bench.table import Table

NP = 2
STEPS = 30
HVDJOB = "hvdjob run, np=2 (default placement and data plane)"
LIMIT = "compute only: 2 pinned single-thread processes at once (sum)"


def write_spec(ctx: SuiteContext) -> str:
    path = ctx.path("compute", "conv.yaml")
    spec = {"name": "conv-bench", "framework": "torch", "script": str(SCRIPTS / "train_conv.py"),
            "resources": {"np": NP}}
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(spec, fh, indent=2)
    return path


def run_limit(ctx: SuiteContext, repeat: int) -> float:
    """Two solo processes started together, one per CPU; their throughputs add up (independent cores)."""
    where = ctx.folder("compute", f"limit-r{repeat + 1}")
    cpus = sorted(os.sched_getaffinity(0))[:NP]
    procs = []
    for i, cpu in enumerate(cpus):
        argv = [sys.executable, str(SCRIPTS / "train_conv.py"), "--solo", "--cpu", str(cpu),
                "--steps", str(STEPS), "--out", f"{where}/solo{i}.json"]
        log = open(f"{where}/solo{i}.log", "wb")
        procs.append((subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=job_env()), log))
    for proc, log in procs:
        proc.wait(timeout=600)
        log.close()
    return sum(read_json(f"{where}/solo{i}.json")["samples_per_sec"] for i in range(len(cpus)))


def run_hvdjob(ctx: SuiteContext, spec: str, repeat: int) -> float:
    where = ctx.folder("compute", f"hvdjob-r{repeat + 1}")
    out = f"{where}/conv.json"
    timed(hvdjob_argv(spec, f"{where}/run", sets=[set_args(["--out", out, "--steps", str(STEPS)])]),
          f"{where}/console.log")
    return float(read_json(out)["samples_per_sec"])


def run(ctx: SuiteContext) -> Section:
    spec = write_spec(ctx)
    thr: Dict[str, List[float]] = {HVDJOB: [], LIMIT: []}
    for repeat in range(ctx.repeats):
        for variant in rotate((HVDJOB, LIMIT), repeat):
            value = run_hvdjob(ctx, spec, repeat) if variant == HVDJOB else run_limit(ctx, repeat)
            thr[variant].append(value)
            ctx.say(f"compute: repeat {repeat + 1}/{ctx.repeats}: {variant}: {value:,.0f} samples/s")
    rows = [spread_row(v, "samples/s", thr[v], 0) for v in (HVDJOB, LIMIT)]
    rows.append(ratio_row("efficiency: hvdjob np=2 ÷ compute-only limit", thr[HVDJOB], thr[LIMIT]))
    return Section(
        key="compute",
        title=f"Compute-bound conv net, np={NP}, batch 128 per rank, {STEPS} timed steps (higher is better)",
        table=Table(MEASURE_HEADERS, tuple(rows)),
        notes=["conv 3→16→32 (3x3, ReLU, max-pool) + linear, synthetic 32x32 RGB, SGD; 3 untimed warm-up steps",
               "the limit runs the same script without Horovod, each process pinned to one CPU, both at once"],
        raw={"samples_per_sec": thr},
    )
