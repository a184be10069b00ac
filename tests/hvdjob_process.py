"""Run the real ``hvdjob`` CLI in a subprocess, as a user would, and look at what it left behind."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def run_dir(self) -> Path:
        for line in self.stderr.splitlines():
            if ": run directory " in line:
                return Path(line.split(": run directory ", 1)[1].strip())
        raise AssertionError(f"no run directory announced in:\n{self.stderr}")


def hvdjob_argv(*args: str) -> List[str]:
    return [sys.executable, "-m", "hvdrun_cli", *args]


def run_hvdjob(*args: str, cwd: Path, env: Optional[Dict[str, str]] = None, timeout: float = 300) -> Finished:
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run(
        hvdjob_argv(*args), cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout, check=False
    )
    return Finished(proc.returncode, proc.stdout, proc.stderr)


def start_hvdjob(*args: str, cwd: Path, env: Optional[Dict[str, str]] = None) -> subprocess.Popen:
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.Popen(
        hvdjob_argv(*args), cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def write_job(directory: Path, name: str, body: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(body))
    return path


def processes_of_run(run_id: str) -> List[int]:
    """PIDs whose environment carries HVDJOB_RUN_ID=run_id (the job's ranks and supervisors)."""
    marker = f"HVDJOB_RUN_ID={run_id}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if marker in fh.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            continue
    return found


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def kill_quietly(pids: Sequence[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
