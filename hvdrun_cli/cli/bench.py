"""``hvdjob bench job.yaml --np 1,2``: throughput, scaling efficiency and start-up time at each np.

Every run goes through the runner ``hvdjob run`` uses (in this process), so what is measured is what users get.
"""
from __future__ import annotations

import os
from typing import Optional, Tuple

import click

from hvdrun_cli.bench.autotune import best_of_runs
from hvdrun_cli.bench.machine import load_average, machine_info
from hvdrun_cli.bench.options import parse_np_list
from hvdrun_cli.bench.report import BenchReport, write_report
from hvdrun_cli.bench.runner import BenchConfig, check_spec, describe_sample, run_all
from hvdrun_cli.cli.common import clean_errors
from hvdrun_cli.cli.spec_options import set_option
from hvdrun_cli.launch.rundir import new_run_id

def autotune_text(config: BenchConfig, samples: list) -> str:
    """The best parameters Horovod's autotuner found at each np, with the --set values to keep them."""
    lines = []
    for np in config.nps:
        dirs = [s.run_dir for s in samples if s.np == np]
        best = best_of_runs(dirs)
        if best is None:
            lines.append(f"autotune np={np}: no samples in the autotune logs (too few steps to score one; "
                         "try more --steps)")
            continue
        lines.append(f"autotune np={np}: best {best.describe()}")
        lines.append("    keep them: " + " ".join(f"--set {item}" for item in best.spec_settings()))
    return "\n".join(lines)


BUSY_LOAD_PER_CORE = 0.5  # above this, other work is competing for the cores being measured


@click.command("bench")
@click.argument("spec_path", metavar="JOB.yaml")
@click.option("--np", "np_list", default="1,2", show_default=True, metavar="N[,N...]",
              help="Rank counts to measure; efficiency is relative to np=1 (or the smallest given).")
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True,
              help="Runs per rank count, interleaved; results show min / median / max.")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Training steps per run (sets train.max_steps); default: the spec's.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Where bench.json, bench.png and the runs go (default runs/<name>/bench-<id>).")
@set_option("Override a spec value for every run (repeatable), as for hvdjob run.")
@click.option("--markdown", is_flag=True, help="Print the table as markdown.")
@click.option("--no-plot", is_flag=True, help="Do not draw bench.png.")
@click.option("--autotune", is_flag=True,
              help="Let Horovod autotune every run and print the best parameters it found (from its autotune log).")
@clean_errors
def bench(
    spec_path: str,
    np_list: str,
    repeats: int,
    steps: Optional[int],
    out_dir: Optional[str],
    set_options: Tuple[str, ...],
    markdown: bool,
    no_plot: bool,
    autotune: bool,
) -> None:
    """Run JOB.yaml at each np (--repeats times) and report samples/s, scaling efficiency and time to first step."""
    nps = parse_np_list(np_list)
    draft = BenchConfig(spec_path=spec_path, nps=nps, out_dir=out_dir or "", repeats=repeats, steps=steps,
                        set_options=tuple(set_options))
    spec = check_spec(draft)
    out = os.path.abspath(out_dir or os.path.join(spec.run_root, spec.name, f"bench-{new_run_id()}"))
    config = BenchConfig(spec_path=spec_path, nps=nps, out_dir=out, repeats=repeats, steps=steps,
                         set_options=tuple(set_options), autotune=autotune)
    machine = machine_info()
    before = load_average()
    click.echo(f"hvdjob bench: {spec.name}: np {','.join(map(str, nps))}, {repeats} repeat(s); output in {out}",
               err=True)
    cores = int(machine["cores"])  # type: ignore[arg-type]
    if before is not None and before > BUSY_LOAD_PER_CORE * cores:
        click.echo(f"hvdjob bench: load average {before} on {cores} cores: other work is running, "
                   "expect noisy numbers", err=True)
    samples = run_all(config, on_sample=lambda s: click.echo(describe_sample(s, repeats), err=True))
    report = BenchReport(job=spec.name, spec_path=spec_path, repeats=repeats, steps=steps, machine=machine,
                         samples=samples, load_before=before, load_after=load_average(),
                         set_options=tuple(set_options))
    try:
        written = write_report(report, out, plot=not no_plot)
    except ImportError as exc:
        written = write_report(report, out, plot=False)
        click.echo(f"hvdjob bench: no plot ({exc}); install matplotlib for bench.png", err=True)
    click.echo(report.text(markdown=markdown))
    if autotune:
        click.echo(autotune_text(config, samples))
    click.echo(f"hvdjob bench: wrote {', '.join(written.values())}", err=True)
