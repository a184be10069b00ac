"""Where the time from launch to the first step goes, stage by stage: ``hvdjob run`` vs ``horovodrun``.

The same probe script (scripts/startup_probe.py) runs under both launchers, np=2, and rank 0 records
a unix time at each stage; the launch time is taken just before the launcher is spawned. Also
times ``hvdjob run --dry-run`` (CLI start, spec, plan: hvdjob's own work without any rank).
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from typing import Dict, List, Sequence, Tuple

from benchmarks.common import Section, SuiteContext, rotate, slug
from benchmarks.launch import SCRIPTS, hvdjob_argv, horovodrun_argv, job_env, read_json, set_args, timed
from hvdrun_cli.bench.stats import spread
from hvdrun_cli.bench.table import Table, fmt_spread

NP = 2
HVDJOB, HOROVODRUN = "hvdjob run", "horovodrun --gloo"
# (label, from mark, to mark); "launch" is the bench's own time just before the spawn
STAGES: Tuple[Tuple[str, str, str], ...] = (
    ("launch → parent of the rank process starts", "launch", "parent_start"),
    ("parent starts → rank process starts", "parent_start", "process_start"),
    ("rank process starts → script's first line", "process_start", "first_line"),
    ("import torch", "first_line", "torch_imported"),
    ("import horovod.torch", "torch_imported", "horovod_imported"),
    ("hvd.init() (rendezvous of both ranks)", "horovod_imported", "initialised"),
    ("model + SGD + DistributedOptimizer", "initialised", "optimizer_built"),
    ("broadcast_parameters, first batch", "optimizer_built", "first_step"),
    ("total: launch → first step", "launch", "first_step"),
)
DRY_RUNS = 5
CLOCK_RESOLUTION_S = 0.01  # process start times from /proc are in 10 ms clock ticks


def write_spec(ctx: SuiteContext) -> str:
    path = ctx.path("profile", "probe.yaml")
    spec = {"name": "startup-probe", "framework": "torch", "script": str(SCRIPTS / "startup_probe.py"),
            "resources": {"np": NP}, "horovod": {"threads_per_rank": 1}}
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(spec, fh, indent=2)
    return path


def stage_durations(marks: Dict[str, float]) -> Dict[str, float]:
    """Seconds per stage; a gap smaller than the /proc clock tick reads as 0, not as a negative time."""
    durations = {}
    for label, start, end in STAGES:
        value = marks[end] - marks[start]
        durations[label] = 0.0 if abs(value) < CLOCK_RESOLUTION_S else value
    return durations


def probe_once(ctx: SuiteContext, spec: str, variant: str, repeat: int) -> Tuple[Dict[str, float], str]:
    where = ctx.folder("profile", f"{slug(variant)}-r{repeat + 1}")
    out = f"{where}/probe.json"
    if variant == HVDJOB:
        argv = hvdjob_argv(spec, f"{where}/run", sets=[set_args([out])])
    else:
        argv = horovodrun_argv(NP, str(SCRIPTS / "startup_probe.py"), [out])
    launched = timed(argv, f"{where}/console.log")
    result = read_json(out)
    marks = dict(result["marks"], launch=launched.launch_unix_time)
    return stage_durations(marks), result.get("parent_cmdline", "")


def dry_run_seconds(spec: str, runs: int = DRY_RUNS) -> List[float]:
    """Wall time of ``hvdjob run --dry-run``: interpreter, CLI imports, spec, probes, plan."""
    times = []
    for _ in range(runs):
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "hvdrun_cli", "run", spec, "--dry-run"], check=True,
                       stdout=subprocess.DEVNULL, env=job_env())
        times.append(time.monotonic() - started)
    return times


def slowest_imports(spec: str, count: int = 4) -> List[Tuple[str, float]]:
    """Top-level modules ``hvdjob run --dry-run`` spends most import time on (-X importtime)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "hvdrun_cli", "run", spec, "--dry-run"],
                          check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=job_env())
    top: List[Tuple[str, float]] = []
    for line in proc.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$", line)  # not indented: top level
        if match:
            top.append((match.group(2), int(match.group(1)) / 1e6))
    return sorted(top, key=lambda item: -item[1])[:count]


def run(ctx: SuiteContext, variants: Sequence[str] = (HVDJOB, HOROVODRUN)) -> Section:
    spec = write_spec(ctx)
    stages: Dict[str, Dict[str, List[float]]] = {v: {label: [] for label, _, _ in STAGES} for v in variants}
    parents: Dict[str, str] = {}
    for repeat in range(ctx.repeats):
        for variant in rotate(variants, repeat):
            durations, parents[variant] = probe_once(ctx, spec, variant, repeat)
            for label, value in durations.items():
                stages[variant][label].append(value)
            ctx.say(f"profile: repeat {repeat + 1}/{ctx.repeats}: {variant}: first step "
                    f"{durations[STAGES[-1][0]]:.2f} s after launch")
    dry = dry_run_seconds(spec)
    imports = slowest_imports(spec)
    rows = [(label, *(fmt_spread(spread(stages[v][label]), 2) for v in variants)) for label, _, _ in STAGES]
    notes = [
        "parent of the rank process: " + "; ".join(f"{v}: `{parents.get(v, '?')[:70]}`" for v in variants),
        f"`hvdjob run --dry-run` (CLI start, spec, tool probes, plan; no ranks): "
        f"{fmt_spread(spread(dry), 3)} s over {len(dry)} runs",
        "slowest top-level imports of that dry run: "
        + ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in imports),
    ]
    return Section(
        key="profile",
        title=f"Where launch → first step goes, np={NP}, rank 0, minimal script (seconds)",
        table=Table(("stage", *(f"{v} (s)" for v in variants)), tuple(rows)),
        notes=notes,
        raw={"stages": stages, "dry_run_s": dry, "slowest_imports": imports, "parents": parents},
    )
