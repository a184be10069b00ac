"""Run the job once per (repeat, np) through the runner ``hvdjob run`` uses, and collect the samples.

Each run is a real launch (plan, rank processes, run directory) by :class:`~hvdrun_cli.launch.runner.Launch`,
in this process: the same code path a user's ``hvdjob run`` takes after reading its command line,
so the start-up measured is hvdjob's planning and rank start-up, not a Python interpreter's.
This module is the only part of the bench that starts jobs.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

from hvdrun_cli.bench.autotune import LOG_FILE
from hvdrun_cli.bench.options import run_order
from hvdrun_cli.bench.samples import SUMMARY_FILE, RunSample, sample_from_summary
from hvdrun_cli.cli.spec_options import overrides_from_flags
from hvdrun_cli.errors import JobFailed, LaunchError, Problem, UserInputError
from hvdrun_cli.launch.planner import layout_for, resolve_hosts
from hvdrun_cli.launch.runner import Launch, RunOptions
from hvdrun_cli.scriptjob.files import load_spec_file
from hvdrun_cli.spec import load_spec
from hvdrun_cli.spec.model import JobSpec

CONSOLE_LOG = "console.log"  # what the launcher printed (notes, restarts), kept beside the run's own logs


@dataclass(frozen=True)
class BenchConfig:
    spec_path: str
    nps: Tuple[int, ...]
    out_dir: str
    repeats: int = 3
    steps: Optional[int] = None  # train.max_steps for every run; None keeps the spec's
    set_options: Tuple[str, ...] = ()  # the user's --set values, passed on to every run
    timeout_s: float = 1800.0  # per run
    autotune: bool = False  # Horovod autotunes each run and logs its samples to <run dir>/autotune.csv


def run_dir_for(config: BenchConfig, np: int, repeat: int) -> str:
    return os.path.join(config.out_dir, "runs", f"np{np}-r{repeat + 1}")


def run_overrides(config: BenchConfig, run_dir: str) -> Tuple[str, ...]:
    """``--set`` values for one run: the user's, then the bench's own (which must win).

    Checkpoints go into the run's own directory and are never resumed: a repeat resuming the
    previous repeat's final checkpoint would train zero steps and measure nothing.
    """
    own = [
        f"checkpoint.dir={json.dumps(os.path.join(run_dir, 'checkpoints'))}",
        "checkpoint.resume=never",
    ]
    if config.steps is not None:
        own.append(f"train.max_steps={int(config.steps)}")
    if config.autotune:
        own += ["horovod.autotune=true", f"horovod.autotune_log={json.dumps(os.path.join(run_dir, LOG_FILE))}"]
    return tuple(config.set_options) + tuple(own)


def spec_for_run(config: BenchConfig, np: int, run_dir: str) -> JobSpec:
    """The spec one run launches: the user's file with the user's and the bench's overrides and ``np``."""
    return load_spec(config.spec_path, overrides_from_flags(run_overrides(config, run_dir), np=str(np)))


def check_spec(config: BenchConfig) -> JobSpec:
    """Load the spec with each run's overrides and fit each np on its hosts, before anything starts.

    Bad input then fails in a second, not after the first runs. Raises :class:`UserInputError`
    for a bad spec or flag, ``--steps`` on a script job, or an np the hosts cannot hold.
    """
    if config.steps is not None and config.steps < 1:
        raise UserInputError(Problem("must be at least 1", key="--steps", got=config.steps))
    base = load_spec_file(config.spec_path, overrides_from_flags(config.set_options))
    if config.steps is not None and not base.managed:
        raise UserInputError(Problem(
            "only applies to managed training (train:); a script job reads its own arguments",
            file=config.spec_path, key="--steps"))
    spec = base
    for np in config.nps:
        run_dir = run_dir_for(config, np, 0)
        spec = spec_for_run(config, np, run_dir)
        layout_for(spec, resolve_hosts(spec, os.environ))  # np fits the hosts
    return spec


def read_summary(run_dir: str) -> dict:
    path = os.path.join(run_dir, SUMMARY_FILE)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise LaunchError(f"{path} was not written; the bench needs managed training (train:), or a script "
                          "that writes samples_per_sec and first_step_unix_time there") from None
    except (OSError, ValueError) as exc:
        raise LaunchError(f"{path}: cannot read it: {exc}") from exc
    if not isinstance(data, dict):
        raise LaunchError(f"{path}: not a JSON object")
    return data


def run_once(config: BenchConfig, np: int, repeat: int) -> RunSample:
    """Launch one run and wait for it; a failed run raises :class:`JobFailed` with its exit code."""
    run_dir = os.path.abspath(run_dir_for(config, np, repeat))
    spec = spec_for_run(config, np, run_dir)
    os.makedirs(run_dir, exist_ok=True)
    console = os.path.join(run_dir, CONSOLE_LOG)
    with open(console, "w", encoding="utf-8") as out:
        launch_unix_time = time.time()
        started = time.monotonic()
        outcome = Launch(spec, run_dir=run_dir).run(
            RunOptions(quiet=True, time_limit_s=config.timeout_s, terminal=out))
        wall_s = time.monotonic() - started
    if not outcome.ok:
        result = outcome.result
        why = f"took longer than {config.timeout_s:.0f} s" if outcome.timed_out else result.message
        lines = [f"bench run np={np} repeat {repeat + 1}: {why}"] + [f"    {line}" for line in result.tail]
        lines.append(f"    (launcher messages in {console})")
        raise JobFailed("\n".join(lines), exit_code=result.exit_code if result.exit_code > 0 else 1)
    return sample_from_summary(
        read_summary(run_dir),
        np=np,
        repeat=repeat,
        launch_unix_time=launch_unix_time,
        wall_s=wall_s,
        run_dir=run_dir,
        where=os.path.join(run_dir, SUMMARY_FILE),
    )


def run_all(
    config: BenchConfig,
    on_sample: Optional[Callable[[RunSample], None]] = None,
    run: Callable[[BenchConfig, int, int], RunSample] = run_once,
) -> List[RunSample]:
    """Every (repeat, np) in interleaved order; ``on_sample`` sees each result as it arrives."""
    samples: List[RunSample] = []
    for repeat, np in run_order(config.nps, config.repeats):
        sample = run(config, np, repeat)
        samples.append(sample)
        if on_sample:
            on_sample(sample)
    return samples


def describe_sample(sample: RunSample, repeats: int) -> str:
    """One progress line per finished run."""
    return (f"bench: np={sample.np} repeat {sample.repeat + 1}/{repeats}: {sample.samples_per_sec:,.0f} samples/s, "
            f"first step {sample.time_to_first_step_s:.2f} s after launch, run took {sample.wall_s:.1f} s")
