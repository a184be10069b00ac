"""Cost of planning a big cluster: hostfile of N hosts x 8 slots -> plan -> dry-run text and JSON.

In-process, the same calls ``hvdjob run --launcher mpi --dry-run`` makes (hostfile parse, layout,
launcher decision, plan, rendering). Time per host must stay flat from 1k to 20k hosts (linear
cost); CPU time of this process is reported beside wall time because the box is shared.
"""
from __future__ import annotations

import json
import os
import time
from typing import Dict, List, Sequence

from benchmarks.common import Section, SuiteContext
from hvdrun_cli.bench.stats import spread
from hvdrun_cli.bench.table import Table, fmt_spread
from hvdrun_cli.launch.planner import decide, make_plan
from hvdrun_cli.launch.tools import Tools
from hvdrun_cli.spec.model import JobSpec, ResourcesSpec

HOSTS = (1000, 5000, 20000)
SLOTS = 8
TOOLS = Tools(python="/venv/bin/python", mpirun="/usr/bin/mpirun", mpi_implementation="openmpi",
              hostname="login", cores=8)


def plan_once(hostfile: str) -> float:
    """CPU seconds for one full dry run of the job over ``hostfile``."""
    spec = JobSpec(framework="torch", name="big", script="/jobs/train.py", launcher="mpi",
                   resources=ResourcesSpec(hostfile=hostfile), run_root="/runs")
    started = time.process_time()
    plan = make_plan(spec, environ={}, tools=TOOLS, run_dir="/runs/big/1", run_id="1",
                     decision=decide(spec, {}, TOOLS))
    plan.render_text()
    json.dumps(plan.to_dict())
    return time.process_time() - started


def run(ctx: SuiteContext, hosts: Sequence[int] = HOSTS) -> Section:
    seconds: Dict[str, List[float]] = {}
    for n in hosts:
        path = ctx.path("planning", f"hosts-{n}.txt")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("".join(f"node{i:06d} slots={SLOTS}\n" for i in range(n)))
        seconds[str(n)] = []
    for repeat in range(ctx.repeats):
        for n in (hosts if repeat % 2 == 0 else tuple(reversed(hosts))):
            seconds[str(n)].append(plan_once(ctx.path("planning", f"hosts-{n}.txt")))
        ctx.say(f"planning: repeat {repeat + 1}/{ctx.repeats} done")
    rows = []
    for n in hosts:
        s = spread(seconds[str(n)])
        rows.append((f"{n:,} x {SLOTS}", fmt_spread(s, 2), fmt_spread(s.scaled(1e6 / n), 1)))
    return Section(
        key="planning",
        title=f"Dry-run cost over a hostfile of N hosts x {SLOTS} slots (lower is better; flat per host = linear)",
        table=Table(("hosts x slots", "CPU s per dry run", "µs per host"), tuple(rows)),
        notes=["hostfile parse, layout, launcher decision, plan, dry-run text and JSON; CPU time of one process",
               f"mpirun gets a generated hostfile beyond a few hundred hosts; the dry run lists one line per host "
               f"beyond 512 ranks"],
        raw={"cpu_seconds": seconds, "hosts": list(hosts)},
    )
