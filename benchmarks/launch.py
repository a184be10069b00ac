"""Starting the compared programs: argv builders (pure) and one timed launch.

Every variant is started the way a user starts it from a shell: ``hvdjob run``, ``horovodrun``
or ``torchrun`` from the virtual environment, with the launch time taken just before the spawn.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

SCRIPTS = Path(__file__).resolve().parent / "scripts"
BIN = Path(sys.executable).parent
TIMEOUT_S = 600.0


class BenchmarkFailed(RuntimeError):
    """A compared program failed; the message names its log."""


@dataclass(frozen=True)
class Timed:
    launch_unix_time: float
    wall_s: float


def hvdjob_argv(spec: str, run_dir: str, np: Optional[int] = None, sets: Sequence[str] = ()) -> List[str]:
    argv = [sys.executable, "-m", "hvdrun_cli", "run", spec, "--run-dir", run_dir, "-q"]
    if np is not None:
        argv += ["--np", str(np)]
    for option in sets:
        argv += ["--set", option]
    return argv


def horovodrun_argv(np: int, script: str, args: Sequence[str]) -> List[str]:
    return [str(BIN / "horovodrun"), "-np", str(np), "--gloo", sys.executable, script, *args]


def torchrun_argv(np: int, script: str, args: Sequence[str]) -> List[str]:
    """Single-node torchrun; --standalone picks a free port (the documented single-machine form)."""
    return [str(BIN / "torchrun"), "--standalone", "--nproc-per-node", str(np), script, *args]


def set_args(args: Sequence[str]) -> str:
    """A ``--set args=[...]`` value; JSON is valid YAML, so every entry stays a string."""
    return "args=" + json.dumps([str(a) for a in args])


def job_env(extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """The caller's environment plus one thread per rank, as hvdjob gives 2 ranks on 2 cores."""
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def timed(argv: Sequence[str], log_path: str, env: Optional[Mapping[str, str]] = None,
          cwd: Optional[str] = None, timeout_s: float = TIMEOUT_S) -> Timed:
    """Run ``argv`` to completion with output to ``log_path``; a non-zero exit raises BenchmarkFailed."""
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "wb") as log:
        launch = time.time()
        started = time.monotonic()
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=dict(env) if env is not None else job_env(), cwd=cwd)
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.terminate()  # hvdjob and torchrun stop their ranks on SIGTERM
            try:
                code = proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
        wall = time.monotonic() - started
    if code != 0:
        with open(log_path, encoding="utf-8", errors="replace") as fh:
            tail = "".join(fh.readlines()[-15:])
        raise BenchmarkFailed(f"{argv[0]} ... exited with {code}; see {log_path}:\n{tail}")
    return Timed(launch, wall)


def read_json(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)
