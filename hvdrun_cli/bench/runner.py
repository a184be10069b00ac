"""Run the job once per (repeat, np) through ``hvdjob run`` itself and collect the samples.

Each run is a real ``python -m hvdrun_cli run JOB --np K --run-dir DIR -q`` subprocess, i.e. the
same code path a user's ``hvdjob run`` takes, so the start-up cost measured is the one users pay.
This module is the only part of the bench that starts processes.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

from hvdrun_cli.bench.autotune import LOG_FILE
from hvdrun_cli.bench.options import run_order
from hvdrun_cli.bench.samples import SUMMARY_FILE, RunSample, sample_from_summary
from hvdrun_cli.cli.spec_options import overrides_from_flags
from hvdrun_cli.errors import JobFailed, LaunchError, Problem, UserInputError
from hvdrun_cli.launch.planner import layout_for, resolve_hosts
from hvdrun_cli.spec import load_spec
from hvdrun_cli.spec.model import JobSpec

CONSOLE_LOG = "console.log"  # what ``hvdjob run`` printed, kept beside the run's own logs
STOP_WAIT_S = 45.0  # hvdjob gives ranks 30 s to checkpoint after SIGTERM; then it is killed
TAIL_LINES = 15


@dataclass(frozen=True)
class BenchConfig:
    spec_path: str
    nps: Tuple[int, ...]
    out_dir: str
    repeats: int = 3
    steps: Optional[int] = None  # train.max_steps for every run; None keeps the spec's
    set_options: Tuple[str, ...] = ()  # the user's --set values, passed on to every run
    python: str = sys.executable
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


def run_argv(config: BenchConfig, np: int, run_dir: str) -> List[str]:
    """The ``hvdjob run`` command line for one run (an argv list, never a shell string)."""
    argv = [config.python, "-m", "hvdrun_cli", "run", config.spec_path, "--run-dir", run_dir, "--np", str(np), "-q"]
    for option in run_overrides(config, run_dir):
        argv += ["--set", option]
    return argv


def check_spec(config: BenchConfig) -> JobSpec:
    """Load the spec with each run's overrides and fit each np on its hosts, before anything starts.

    Bad input then fails in a second, not after the first runs. Raises :class:`UserInputError`
    for a bad spec or flag, ``--steps`` on a script job, or an np the hosts cannot hold.
    """
    if config.steps is not None and config.steps < 1:
        raise UserInputError(Problem("must be at least 1", key="--steps", got=config.steps))
    base = load_spec(config.spec_path, overrides_from_flags(config.set_options))
    if config.steps is not None and not base.managed:
        raise UserInputError(Problem(
            "only applies to managed training (train:); a script job reads its own arguments",
            file=config.spec_path, key="--steps"))
    spec = base
    for np in config.nps:
        run_dir = run_dir_for(config, np, 0)
        spec = load_spec(config.spec_path, overrides_from_flags(run_overrides(config, run_dir), np=str(np)))
        layout_for(spec, resolve_hosts(spec, os.environ))  # np fits the hosts
    return spec


def _tail(path: str, lines: int = TAIL_LINES) -> List[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read().splitlines()[-lines:]
    except OSError:
        return []


def _wait(proc: "subprocess.Popen[bytes]", timeout_s: float) -> Tuple[int, bool]:
    """(exit code, timed out). A run over time is asked to stop (SIGTERM), then killed."""
    try:
        return proc.wait(timeout=timeout_s), False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=STOP_WAIT_S), True
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(), True
    except KeyboardInterrupt:
        # Ctrl-C reached hvdjob too (same process group): let it stop its ranks before we go.
        try:
            proc.wait(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise


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
    os.makedirs(run_dir, exist_ok=True)
    console = os.path.join(run_dir, CONSOLE_LOG)
    argv = run_argv(config, np, run_dir)
    with open(console, "wb") as out:
        launch_unix_time = time.time()
        started = time.monotonic()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        code, timed_out = _wait(proc, config.timeout_s)
        wall_s = time.monotonic() - started
    if timed_out or code != 0:
        why = f"took longer than {config.timeout_s:.0f} s" if timed_out else f"exited with code {code}"
        lines = [f"bench run np={np} repeat {repeat + 1}: hvdjob run {why}; last lines of {console}:"]
        lines += [f"    {line}" for line in _tail(console)]
        raise JobFailed("\n".join(lines), exit_code=code if code > 0 else 1)
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
