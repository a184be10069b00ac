"""The Horovod that `make setup` built really works: 2 ranks through horovodrun (Gloo) and mpirun.

Each rank contributes rank+1 to an allreduce (sum must be 3) and computes a gradient on input
filled with rank+1; averaged gradients are then the mean over ranks (x = 1.5 per element), and the
weights after one step must be bit-identical on both ranks.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

from tests.launcher_rows import rank_rows

pytestmark = pytest.mark.integration
SCRIPTS = Path(__file__).parent / "scripts"
VENV_BIN = Path(sys.executable).parent


def _results(argv: List[str], env_extra: dict) -> List[dict]:
    env = dict(os.environ, **env_extra)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return rank_rows(done.stdout)


def _check(rows: List[dict]) -> None:
    assert [r["rank"] for r in rows] == [0, 1]
    for row in rows:
        assert row["size"] == 2
        assert row["sum"] == [3.0, 20.0]
        # gradient of sum(x @ w) w.r.t. w is 4 rows * x; averaged over ranks x = (1 + 2) / 2
        flat = [value for part in row["grad_w"] for value in part]  # torch (1,3), TF (3,1)
        assert flat == pytest.approx([6.0, 6.0, 6.0])
    assert rows[0]["weights"] == rows[1]["weights"]


@pytest.mark.parametrize("framework", ["torch", "tensorflow"])
def test_gloo_two_ranks(framework: str) -> None:
    argv = [str(VENV_BIN / "horovodrun"), "--gloo", "-np", "2", "-H", "localhost:2",
            sys.executable, str(SCRIPTS / f"build_check_{framework}.py")]
    _check(_results(argv, {"TF_USE_LEGACY_KERAS": "1"}))


@pytest.mark.mpirun
def test_mpirun_two_ranks_torch() -> None:
    mpirun = shutil.which("mpirun")
    if not mpirun:
        pytest.skip("Open MPI is not installed on this machine")
    argv = [mpirun, "--allow-run-as-root", "--tag-output", "-np", "2", "--bind-to", "none",
            "-mca", "btl", "self,vader,tcp", "-mca", "btl_vader_single_copy_mechanism", "none",
            sys.executable, str(SCRIPTS / "build_check_torch.py")]
    _check(_results(argv, {}))
