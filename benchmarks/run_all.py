"""Run every benchmark and print one markdown report (the README's Performance section).

    python -m benchmarks [--repeats 3] [--steps 300] [--only startup,profile,training,keras,bandwidth,compute,planning,tunables]

Results go to benchmarks/results/<timestamp>/: results.json (every measured value), results.md
(the printed report) and one PNG per benchmark. Each number is min / median / max over repeats,
with the compared variants interleaved inside every repeat so they share the machine's noise.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

if __package__ in (None, ""):  # run as a file (python benchmarks/run_all.py): make the repo importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import bandwidth, compute, launch_profile, planning, plots, startup, training, training_keras, tunables
from benchmarks.common import Section, SuiteContext
from benchmarks.launch import BenchmarkFailed
from hvdrun_cli.bench.machine import describe_machine, load_average, machine_info
from hvdrun_cli.errors import HvdjobError

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
BENCHMARKS: Dict[str, Callable[[SuiteContext], Section]] = {
    "startup": startup.run,
    "profile": launch_profile.run,
    "training": training.run,
    "keras": training_keras.run,
    "bandwidth": bandwidth.run,
    "compute": compute.run,
    "planning": planning.run,
    "tunables": tunables.run,
}


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="repeats per comparison (default 3)")
    parser.add_argument("--steps", type=int, default=300, help="training steps per throughput run (default 300)")
    parser.add_argument("--only", default=",".join(BENCHMARKS),
                        help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--out", help="output folder (default benchmarks/results/<timestamp>)")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown or not chosen:
        parser.error(f"--only: unknown benchmark(s) {', '.join(unknown) or '(none given)'}; "
                     f"choose from {', '.join(BENCHMARKS)}")
    if args.repeats < 1 or args.steps < 1:
        parser.error("--repeats and --steps must be at least 1")
    args.only = chosen
    return args


def draw(section: Section, folder: str) -> None:
    path = os.path.join(folder, f"{section.key}.png")
    if section.key == "startup":
        section.plot = plots.startup(path, section.raw["seconds"])
    elif section.key in ("training", "keras"):
        section.plot = plots.training(path, section.raw["samples_per_sec"])
    elif section.key == "bandwidth":
        section.plot = plots.bandwidth(path, section.raw["sizes_mib"], section.raw["bytes_per_sec"])


def report(sections: List[Section], machine: Dict[str, object], repeats: int, minutes: float,
           loads: Sequence[Optional[float]]) -> str:
    lines = [
        f"Measured on {describe_machine(machine)}; {repeats} repeats, each cell min / median / max; "
        f"suite took {minutes:.1f} min; 1-min load average {loads[0]} before, {loads[1]} after.",
        "",
    ]
    for section in sections:
        lines += [section.markdown(), ""]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    out = os.path.abspath(args.out or os.path.join(RESULTS, time.strftime("%Y%m%d-%H%M%S")))
    os.makedirs(out, exist_ok=True)
    ctx = SuiteContext(out_dir=out, repeats=args.repeats, steps=args.steps,
                       say=lambda text: print(text, file=sys.stderr, flush=True))
    machine = machine_info()
    before = load_average()
    if before is not None and before > 0.5 * int(machine["cores"]):  # type: ignore[arg-type]
        ctx.say(f"benchmarks: load average {before} on {machine['cores']} cores: other work is running, "
                "numbers will be noisy")
    started = time.monotonic()
    sections: List[Section] = []
    try:
        for name in args.only:
            ctx.say(f"benchmarks: {name} ...")
            section = BENCHMARKS[name](ctx)
            draw(section, out)
            sections.append(section)
    except (BenchmarkFailed, HvdjobError) as exc:
        print(f"benchmarks: failed: {exc}", file=sys.stderr)
        return 1
    minutes = (time.monotonic() - started) / 60
    after = load_average()
    text = report(sections, machine, args.repeats, minutes, (before, after))
    with open(os.path.join(out, "results.md"), "w", encoding="utf-8") as fh:
        fh.write(text)
    data = {
        "machine": machine,
        "repeats": args.repeats,
        "steps": args.steps,
        "minutes": round(minutes, 2),
        "load_average_1min": {"before": before, "after": after},
        "sections": {section.key: section.to_dict() for section in sections},
    }
    with open(os.path.join(out, "results.json"), "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
    print(text)
    ctx.say(f"benchmarks: results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
