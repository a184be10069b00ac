"""Running hvdjob against the test cluster, as a user would from a shell."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from slurm_cluster import SlurmCluster


def hvdjob(cluster: SlurmCluster, cwd: Path, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    """``hvdjob ARGS`` in ``cwd`` with the cluster's environment (its SLURM_CONF)."""
    return subprocess.run(
        [sys.executable, "-m", "hvdrun_cli", *args],
        cwd=cwd, env=cluster.env, capture_output=True, text=True, timeout=timeout,
    )


def submit(cluster: SlurmCluster, cwd: Path, spec: Path, *flags: str) -> str:
    """``hvdjob submit``; returns the job id it printed."""
    result = hvdjob(cluster, cwd, "submit", str(spec), *flags)
    assert result.returncode == 0, result.stdout + result.stderr
    match = re.search(r"^submitted job (\d+)", result.stdout, re.MULTILINE)
    assert match, result.stdout
    return match.group(1)


def job_output(cluster: SlurmCluster, cwd: Path, job_id: str, *flags: str) -> str:
    result = hvdjob(cluster, cwd, "logs", job_id, *flags)
    assert result.returncode == 0, result.stderr
    return result.stdout


def write_spec(path: Path, lines: Sequence[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path
