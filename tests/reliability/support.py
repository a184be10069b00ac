"""Running ``hvdjob run`` under fault injection: start jobs, follow their output, find their processes.

Output goes to files, not pipes, so a job never blocks on a reader; every job a :class:`JobRunner`
started is killed (with every process carrying its run id) when the test ends.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import yaml

from tests.hvdjob_process import hvdjob_argv, kill_quietly, processes_of_run

HERE = Path(__file__).resolve().parent
STARTED = re.compile(r"^hvdjob: rank (\d+) started \(pid (\d+) on ")


@dataclass
class Job:
    """One running ``hvdjob run``; output is captured to files so nothing blocks on a full pipe."""

    proc: subprocess.Popen
    workdir: Path
    started_at: float
    out_path: Path
    err_path: Path
    run_dir: Optional[Path] = None

    @property
    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def find_run_dir(self, timeout: float = 30) -> Path:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(r": run directory (\S+)", self.stderr)
            if match:
                self.run_dir = Path(match.group(1))
                return self.run_dir
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"no run directory announced:\n{self.output[-3000:]}")

    @property
    def run_id(self) -> str:
        return (self.run_dir or self.find_run_dir()).name

    def wait_for(self, pattern: str, timeout: float = 120, after: int = 0) -> Tuple[re.Match, float]:
        """Block until stdout matches ``pattern`` (searching from offset ``after``); (match, time seen)."""
        regex = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = regex.search(self.stdout, after)
            if match:
                return match, time.monotonic()
            if self.proc.poll() is not None:
                match = regex.search(self.stdout, after)
                if match:
                    return match, time.monotonic()
                raise AssertionError(f"job ended before {pattern!r} appeared:\n{self.output[-4000:]}")
            time.sleep(0.05)
        raise AssertionError(f"{pattern!r} not seen within {timeout} s:\n{self.output[-4000:]}")

    def worker_pid(self, rank: int, timeout: float = 60) -> int:
        """PID of rank ``rank``'s worker (not its supervisor), from the newest start line in its log."""
        log = (self.run_dir or self.find_run_dir()) / f"rank.{rank}.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if log.exists():
                pids = [int(m.group(2)) for m in map(STARTED.match, log.read_text().splitlines()) if m]
                if pids:
                    return pids[-1]
            time.sleep(0.1)
        raise AssertionError(f"rank {rank} never reported its pid in {log}")

    def wait(self, timeout: float = 120) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"hvdjob still running after {timeout} s:\n{self.output[-4000:]}") from None


@dataclass
class JobRunner:
    """Starts jobs in ``workdir`` and guarantees that nothing of them survives the test."""

    workdir: Path
    jobs: List[Job] = field(default_factory=list)

    def write(self, name: str, body: str) -> Path:
        path = self.workdir / name
        path.write_text(textwrap.dedent(body))
        return path

    def start(self, *args: str, env: Optional[Dict[str, str]] = None,
              preexec_fn: Optional[Callable[[], None]] = None) -> Job:
        full_env = dict(os.environ)
        full_env.update(env or {})
        index = len(self.jobs)
        out, err = self.workdir / f"hvdjob.{index}.out", self.workdir / f"hvdjob.{index}.err"
        with open(out, "wb") as fo, open(err, "wb") as fe:
            proc = subprocess.Popen(hvdjob_argv(*args), cwd=self.workdir, env=full_env, stdout=fo, stderr=fe,
                                    stdin=subprocess.DEVNULL, preexec_fn=preexec_fn)
        job = Job(proc, self.workdir, time.monotonic(), out, err)
        self.jobs.append(job)
        return job

    def run(self, *args: str, env: Optional[Dict[str, str]] = None, timeout: float = 180) -> Job:
        job = self.start(*args, env=env)
        job.wait(timeout)
        job.find_run_dir()
        return job

    def cleanup(self) -> None:
        for job in self.jobs:
            if job.proc.poll() is None:
                job.proc.kill()
                job.proc.wait(timeout=30)
            try:
                run_id = job.run_id
            except AssertionError:
                continue
            kill_quietly(processes_of_run(run_id))


def managed_job(
    runner: JobRunner,
    name: str = "job.yaml",
    *,
    job_name: str = "reliability",
    epochs: int = 6,
    delay: float = 0.02,
    interval: int = 10,
    **sections: object,
) -> Path:
    """A 2-rank deterministic PyTorch job on the digits data (23 steps per epoch, 45 on one rank).

    Checkpoints go to ``runs/<job_name>/checkpoints`` under the runner's directory unless
    ``checkpoint=...`` says otherwise; other keyword arguments become top-level spec sections.
    """
    spec: Dict[str, object] = {
        "framework": "torch",
        "name": job_name,
        "launcher": "gloo",
        "resources": {"np": 2},
        "train": {
            "model": "slow_model:mlp", "model_args": {"delay": delay}, "data": "digits", "epochs": epochs,
            "batch_size": 32, "lr": 0.05, "momentum": 0.9, "log_interval": 5, "seed": 7, "deterministic": True,
            "validate": False,
        },
        "checkpoint": {"interval_steps": interval, "keep": 3},
    }
    spec.update(sections)
    path = runner.workdir / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def stop_job(job: Job, signum: int) -> None:
    try:
        job.proc.send_signal(signum)
    except ProcessLookupError:
        pass


def process_env(pid: int) -> Dict[str, str]:
    """The environment a process was started with (this machine only)."""
    with open(f"/proc/{pid}/environ", "rb") as fh:
        pairs = [item.split(b"=", 1) for item in fh.read().split(b"\0") if b"=" in item]
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def kill_pid(pid: int) -> float:
    """SIGKILL one process; returns when it was sent (time.monotonic())."""
    os.kill(pid, signal.SIGKILL)
    return time.monotonic()


def wait_until_gone(run_id: str, timeout: float = 10) -> List[int]:
    """PIDs of the run still alive after ``timeout`` (empty when everything has exited)."""
    deadline = time.monotonic() + timeout
    left = processes_of_run(run_id)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = processes_of_run(run_id)
    return left



def newest_checkpoint(directory: Path) -> Tuple[int, Dict[str, object]]:
    """(step, payload) of the newest committed checkpoint, verified (SHA-256) and loaded like a resume does."""
    from hvdrun_cli.adapters import torch_state
    from hvdrun_cli.adapters.checkpoint import CheckpointStore

    store = CheckpointStore(str(directory), keep=0, suffix=".pt")
    committed = store.committed()
    assert committed, f"no checkpoint in {directory}"
    checkpoint = store.read(committed[0][1])
    return checkpoint.step, torch_state.read(checkpoint.payload)


def leftovers(directory: Path) -> List[str]:
    """Files in a checkpoint directory that are not complete checkpoints (temp files, lone payloads)."""
    if not directory.exists():
        return []
    names = sorted(p.name for p in directory.iterdir())
    sidecars = {n[:-5] for n in names if n.endswith(".json")}
    return [n for n in names if not (n.endswith(".json") or n.rsplit(".", 1)[0] in sidecars)]
