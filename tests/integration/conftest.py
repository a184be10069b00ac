"""Fixtures for the rank-side tests: real ranks started by ``horovodrun --gloo`` on localhost.

The ranks run ``python -m hvdrun_cli.adapters.worker`` with the launcher contract's environment
(``HVDJOB_SPEC``, ``HVDJOB_RUN_DIR``, ``HVDJOB_ATTEMPT``), so these tests exercise the rank side
independently of hvdjob's own launcher.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
import yaml

from hvdrun_cli.spec.model import JobSpec

REPO = Path(__file__).resolve().parents[2]
JOBS = REPO / "jobs"
BIN = Path(sys.executable).parent
WORKER = [sys.executable, "-m", "hvdrun_cli.adapters.worker"]


@dataclass
class GlooRun:
    """A finished (or stopped) two-rank run and what it left behind."""

    returncode: int
    output: str
    run_dir: Path

    @property
    def dump_dir(self) -> Path:
        return self.run_dir / "params"

    def summary(self) -> Dict[str, Any]:
        return json.loads((self.run_dir / "summary.json").read_text())

    def metrics(self) -> List[Dict[str, Any]]:
        path = self.run_dir / "metrics.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def params(self, rank: int) -> Any:
        import numpy as np

        return np.load(self.dump_dir / f"rank{rank}.npy")

    def rank_exit_code(self) -> int:
        """The first non-zero rank exit code horovodrun reported (0 when all ranks succeeded)."""
        if self.returncode == 0:
            return 0
        match = re.search(r"Exit code: (-?\d+)", self.output)
        assert match, f"horovodrun failed without naming a rank exit code:\n{self.output[-3000:]}"
        return int(match.group(1))


def rank_pids(run_dir: Path) -> Dict[int, int]:
    """rank -> pid of the worker processes whose HVDJOB_RUN_DIR is ``run_dir``.

    A worker is a process whose argv holds ``-m hvdrun_cli.adapters.worker`` and whose environment
    names its rank (horovodrun's own argv ends the same way, but it has no HOROVOD_RANK).
    """
    marker = f"HVDJOB_RUN_DIR={run_dir}".encode()
    found: Dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            if b"hvdrun_cli.adapters.worker" not in argv:
                continue
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        ranks = [int(v.split(b"=", 1)[1]) for v in env if v.startswith(b"HOROVOD_RANK=")]
        if marker in env and ranks:
            found[ranks[0]] = int(entry)
    return found


class HvdGlooRunner:
    """Starts ``horovodrun -np 2 --gloo`` with the worker; kills whatever is left at teardown."""

    def __init__(self) -> None:
        self._started: List[tuple] = []

    @staticmethod
    def write_spec(spec: JobSpec, run_dir: Path) -> Path:
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / "spec.json"
        path.write_text(json.dumps(spec.to_dict(), indent=1))
        return path

    def start(self, spec: JobSpec, run_dir: Path, attempt: int = 0,
              env: Optional[Dict[str, str]] = None) -> subprocess.Popen:
        spec_path = self.write_spec(spec, run_dir)
        full_env = dict(os.environ)
        full_env.update({"HVDJOB_SPEC": str(spec_path), "HVDJOB_RUN_DIR": str(run_dir),
                         "HVDJOB_ATTEMPT": str(attempt), "HVDJOB_PARAM_DUMP": str(run_dir / "params"),
                         "PYTHONUNBUFFERED": "1", **(env or {})})
        argv = [str(BIN / "horovodrun"), "-np", "2", "-H", "localhost:2", "--gloo", *WORKER]
        log = open(run_dir / "output.log", "w")
        proc = subprocess.Popen(argv, cwd=run_dir, env=full_env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        log.close()
        self._started.append((proc, run_dir))
        return proc

    @staticmethod
    def wait(proc: subprocess.Popen, run_dir: Path, timeout: float = 300) -> GlooRun:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop(proc, run_dir)
            pytest.fail(f"ranks still running after {timeout}s:\n{(run_dir / 'output.log').read_text()[-3000:]}")
        return GlooRun(proc.returncode, (run_dir / "output.log").read_text(), run_dir)

    def run(self, spec: JobSpec, run_dir: Path, timeout: float = 300, **kwargs: Any) -> GlooRun:
        return self.wait(self.start(spec, run_dir, **kwargs), run_dir, timeout)

    def cleanup(self) -> None:
        for proc, run_dir in self._started:
            _stop(proc, run_dir)


def _stop(proc: subprocess.Popen, run_dir: Path) -> None:
    """Stop horovodrun (its session) and any rank that outlived it."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    for pid in rank_pids(run_dir).values():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture
def hvd_gloo_run() -> Iterator[HvdGlooRunner]:
    """Run two real Horovod ranks of the worker on a spec: ``hvd_gloo_run.run(spec, run_dir)``."""
    runner = HvdGlooRunner()
    yield runner
    runner.cleanup()


@pytest.fixture(scope="module")
def hvd_gloo_module_run() -> Iterator[HvdGlooRunner]:
    """Like ``hvd_gloo_run`` for module-scoped reference runs shared by several tests."""
    runner = HvdGlooRunner()
    yield runner
    runner.cleanup()


def example_spec(name: str, workdir: Path, **overrides: Any) -> JobSpec:
    """A job from ``jobs/<name>.yaml`` with its run root and checkpoints under ``workdir``.

    ``overrides`` replace top-level fields; ``train``/``horovod``/``checkpoint`` take a dict of
    fields to change in that section. A ``script`` is resolved against the YAML's directory.
    """
    source = JOBS / f"{name}.yaml"
    spec = JobSpec.from_dict(yaml.safe_load(source.read_text()))
    sections = {}
    for section in ("train", "horovod", "checkpoint"):
        changes = overrides.pop(section, {})
        current = getattr(spec, section)
        if changes or section == "checkpoint":
            if section == "checkpoint":
                changes = {"dir": str(workdir / "checkpoints"), **changes}
            sections[section] = dataclasses.replace(current, **changes)
    script = spec.script and str((source.parent / spec.script).resolve())
    fields = {"script": script, "run_root": str(workdir), "source": str(source), "base_dir": str(source.parent),
              **sections, **overrides}
    return dataclasses.replace(spec, **fields)


@pytest.fixture(scope="session")
def example_job_spec():
    """``example_job_spec(name, workdir, **overrides)``: a shipped example job, redirected to ``workdir``."""
    return example_spec


@pytest.fixture(scope="session")
def find_rank_pids():
    """``find_rank_pids(run_dir)``: rank -> pid of that run's live worker processes."""
    return rank_pids


@pytest.fixture
def wait_for_metrics():
    """Block until a run has written ``count`` metrics records (training is under way)."""

    def wait(run_dir: Path, proc: subprocess.Popen, count: int = 1, timeout: float = 180) -> None:
        deadline = time.time() + timeout
        path = run_dir / "metrics.jsonl"
        while time.time() < deadline:
            if path.exists() and len(path.read_text().splitlines()) >= count:
                return
            if proc.poll() is not None:
                pytest.fail(f"run ended before training started:\n{(run_dir / 'output.log').read_text()[-3000:]}")
            time.sleep(0.2)
        pytest.fail(f"no metrics after {timeout}s")

    return wait
