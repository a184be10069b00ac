"""Launch to first training step, np=2: ``hvdjob run`` vs bare ``horovodrun --gloo`` vs ``torchrun``.

All three run an equivalent minimal script (init, tiny model, broadcast, one step) with one thread
per rank; the time is rank 0's first-step start minus the moment just before the launcher was
spawned, so it includes the launcher's own start-up, rendezvous, interpreter and framework imports.
"""
from __future__ import annotations

import json
from typing import Dict, List

from benchmarks.common import MEASURE_HEADERS, Section, SuiteContext, ratio_row, rotate, slug, spread_row
from benchmarks.launch import SCRIPTS, hvdjob_argv, horovodrun_argv, read_json, set_args, timed, torchrun_argv
from hvdrun_cli.bench.table import Table

NP = 2
HVDJOB, HOROVODRUN, TORCHRUN = "hvdjob run", "horovodrun --gloo", "torchrun (torch.distributed gloo)"
VARIANTS = (HVDJOB, HOROVODRUN, TORCHRUN)


def write_spec(ctx: SuiteContext) -> str:
    """Script-mode job for the Horovod script; one thread per rank like the other launchers get."""
    path = ctx.path("startup", "first-step.yaml")
    spec = {
        "name": "first-step",
        "framework": "torch",
        "script": str(SCRIPTS / "first_step_hvd.py"),
        "resources": {"np": NP},
        "horovod": {"threads_per_rank": 1},
        "run_root": ctx.folder("startup", "runs"),
    }
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(spec, fh, indent=2)  # JSON is YAML
    return path


def measure_once(ctx: SuiteContext, spec: str, variant: str, repeat: int) -> float:
    where = ctx.folder("startup", f"{slug(variant)}-r{repeat + 1}")
    out = f"{where}/first_step.json"
    if variant == HVDJOB:
        argv = hvdjob_argv(spec, f"{where}/run", sets=[set_args([out])])
    elif variant == HOROVODRUN:
        argv = horovodrun_argv(NP, str(SCRIPTS / "first_step_hvd.py"), [out])
    else:
        argv = torchrun_argv(NP, str(SCRIPTS / "first_step_ddp.py"), [out])
    launched = timed(argv, f"{where}/console.log")
    result = read_json(out)
    if result.get("size") != NP:
        raise RuntimeError(f"{variant}: ran {result.get('size')} ranks, expected {NP}")
    return float(result["first_step_unix_time"]) - launched.launch_unix_time


def run(ctx: SuiteContext) -> Section:
    spec = write_spec(ctx)
    values: Dict[str, List[float]] = {v: [] for v in VARIANTS}
    for repeat in range(ctx.repeats):
        for variant in rotate(VARIANTS, repeat):
            seconds = measure_once(ctx, spec, variant, repeat)
            values[variant].append(seconds)
            ctx.say(f"startup: repeat {repeat + 1}/{ctx.repeats}: {variant}: first step {seconds:.2f} s after launch")
    rows = [spread_row(v, "s", values[v], 2) for v in VARIANTS]
    rows.append(ratio_row(f"{HVDJOB} ÷ horovodrun", values[HVDJOB], values[HOROVODRUN]))
    rows.append(ratio_row(f"{HVDJOB} ÷ torchrun", values[HVDJOB], values[TORCHRUN]))
    return Section(
        key="startup",
        title=f"Launch to first training step, np={NP}, minimal script (lower is better)",
        table=Table(MEASURE_HEADERS, tuple(rows)),
        notes=["ratio < 1: hvdjob reaches the first step sooner"],
        raw={"seconds": values},
    )
