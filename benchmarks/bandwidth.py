"""Allreduce bandwidth, np=2 on one machine: ``hvdjob run``'s default data plane (a plain Horovod
script, no spec tuning) vs ``torch.distributed`` gloo under torchrun, and a plain memory copy.

On one machine both ranks share the same memory, so a single-threaded ``memcpy`` of the same bytes
is the ceiling an allreduce is compared against. Bandwidth here is message bytes / seconds per
operation (for 2 ranks this equals NCCL-style "bus bandwidth", 2(n-1)/n = 1).
"""
from __future__ import annotations

import json
import sys
from typing import Dict, List, Sequence

from benchmarks.common import Section, SuiteContext, rotate
from benchmarks.launch import SCRIPTS, hvdjob_argv, job_env, read_json, set_args, timed, torchrun_argv
from hvdrun_cli.bench.stats import paired_ratios, spread
from hvdrun_cli.bench.table import Table, fmt_spread

NP = 2
SIZES_MIB = (1, 4, 16, 64, 256)
GB = 1e9
ALLREDUCE, TORCH, COPY = "allreduce", "torch-gloo", "copy"
VARIANTS = (ALLREDUCE, TORCH, COPY)


def write_spec(ctx: SuiteContext) -> str:
    path = ctx.path("bandwidth", "allreduce.yaml")
    spec = {
        "name": "allreduce-bandwidth",
        "framework": "torch",
        "script": str(SCRIPTS / "allreduce_bw.py"),
        "resources": {"np": NP},
    }
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(spec, fh, indent=2)
    return path


def measure_once(ctx: SuiteContext, spec: str, variant: str, repeat: int, sizes: Sequence[int]) -> Dict[str, float]:
    """Bytes per second for each size, from one launch of the variant."""
    where = ctx.folder("bandwidth", f"{variant}-r{repeat + 1}")
    out = f"{where}/{variant}.json"
    args = [out, *map(str, sizes)]
    if variant == ALLREDUCE:
        timed(hvdjob_argv(spec, f"{where}/run", sets=[set_args(args)]), f"{where}/console.log")
    elif variant == TORCH:
        timed(torchrun_argv(NP, str(SCRIPTS / "allreduce_bw_torch.py"), args), f"{where}/console.log",
              env=job_env(), cwd=str(SCRIPTS))
    else:
        timed([sys.executable, str(SCRIPTS / "copy_bw.py"), *args], f"{where}/console.log", env=job_env(),
              cwd=str(SCRIPTS))
    results = read_json(out)["results"]
    return {str(size): results[str(size)]["bytes"] / results[str(size)]["seconds"] for size in sizes}


def run(ctx: SuiteContext, sizes: Sequence[int] = SIZES_MIB) -> Section:
    spec = write_spec(ctx)
    rates: Dict[str, Dict[str, List[float]]] = {v: {str(s): [] for s in sizes} for v in VARIANTS}
    for repeat in range(ctx.repeats):
        for variant in rotate(VARIANTS, repeat):
            for size, rate in measure_once(ctx, spec, variant, repeat, sizes).items():
                rates[variant][size].append(rate)
            ctx.say(f"bandwidth: repeat {repeat + 1}/{ctx.repeats}: {variant} done")
    rows = []
    for size in map(str, sizes):
        allreduce, torch, copy = rates[ALLREDUCE][size], rates[TORCH][size], rates[COPY][size]
        rows.append((
            f"{size} MiB",
            fmt_spread(spread(allreduce).scaled(1 / GB), 2),
            fmt_spread(spread(torch).scaled(1 / GB), 2),
            fmt_spread(spread(paired_ratios(allreduce, torch)), 2),
            fmt_spread(spread(copy).scaled(1 / GB), 2),
            fmt_spread(spread(paired_ratios(allreduce, copy)), 3),
        ))
    headers = ("float32 tensor", "hvdjob default (GB/s)", "torch.distributed gloo (GB/s)", "hvdjob ÷ torch gloo",
               "memcpy, 1 process (GB/s)", "hvdjob ÷ memcpy")
    return Section(
        key="bandwidth",
        title="Allreduce np=2 on one machine: hvdjob's default data plane vs torch.distributed gloo (higher is better)",
        table=Table(headers, tuple(rows)),
        notes=["hvdjob default: a plain Horovod script under `hvdjob run`, no spec tuning (MPI data plane "
               "over shared memory where Horovod and mpirun have MPI, see the dry run)",
               "GB/s = message bytes / seconds per operation (10^9 bytes); allreduce in place, op Sum",
               "memcpy: numpy.copyto in one thread; sizes up to a few MiB fit in the CPU caches"],
        raw={"bytes_per_sec": rates, "sizes_mib": list(sizes)},
    )
