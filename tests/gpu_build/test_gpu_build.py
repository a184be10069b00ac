"""The CUDA build ``make setup-gpu`` made: Horovod with NCCL GPU operations, usable on this machine.

Run by ``make test-gpu-build`` against ``$HVDJOB_GPU_VENV`` (default ``.venv-gpu``). It needs no GPU:
a CUDA build of Horovod imports and runs its CPU collectives on a GPU-less machine, and ``doctor``
must say exactly that.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List

import pytest

from tests.launcher_rows import rank_rows

VENV = Path(os.environ["HVDJOB_GPU_VENV"])
BIN = VENV / "bin"
SCRIPTS = Path(__file__).resolve().parents[1] / "integration" / "scripts"
NO_GPU_HERE = shutil.which("nvidia-smi") is None


def run(argv: List[str], timeout: float = 300, cwd: Path = VENV) -> subprocess.CompletedProcess:
    env: Dict[str, str] = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env, check=False)


def test_check_build_lists_nccl() -> None:
    done = run([str(BIN / "horovodrun"), "--check-build"])
    assert done.returncode == 0, done.stderr
    assert "[X] NCCL" in done.stdout
    assert "[X] PyTorch" in done.stdout and "[X] Gloo" in done.stdout


def test_horovod_torch_imports_and_reports_nccl_and_cuda() -> None:
    code = ("import torch, horovod.torch as hvd; "
            "print(torch.version.cuda, hvd.nccl_built(), hvd.cuda_built(), torch.cuda.is_available())")
    done = run([str(BIN / "python"), "-c", code])
    assert done.returncode == 0, done.stderr
    cuda, nccl, cuda_built, available = done.stdout.split()
    assert cuda.startswith("13.") and int(nccl) > 20000 and cuda_built == "True"
    if NO_GPU_HERE:
        assert available == "False"


def test_doctor_reports_nccl_built(tmp_path: Path) -> None:
    done = run([str(BIN / "hvdjob"), "doctor"], cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[X] NCCL" in done.stdout and "[X] CUDA" in done.stdout
    expected = "NCCL built, no GPU visible" if NO_GPU_HERE else "NCCL built, "
    assert expected in done.stdout
    assert "verdict: ready" in done.stdout


def test_doctor_json_names_nccl(tmp_path: Path) -> None:
    done = run([str(BIN / "hvdjob"), "doctor", "--json"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout)
    assert facts["gpu"]["nccl_built"] is True and facts["gpu"]["cuda_built"] is True
    assert facts["gpu"]["nccl_version"].startswith("2.")
    assert facts["frameworks"]["torch"]["built"]["nccl"] is True


def test_two_ranks_reduce_on_cpu_with_the_cuda_build() -> None:
    argv = [str(BIN / "horovodrun"), "--gloo", "-np", "2", "-H", "localhost:2", str(BIN / "python"),
            str(SCRIPTS / "build_check_torch.py")]
    done = run(argv)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = rank_rows(done.stdout)
    assert sorted(r["rank"] for r in rows) == [0, 1]
    assert all(r["sum"] == [3.0, 20.0] for r in rows)
    assert rows[0]["weights"] == rows[1]["weights"]
