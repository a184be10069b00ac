"""``hvdjob doctor`` reports the real build and catches a framework Horovod cannot load with."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hvdjob_process import run_hvdjob

pytestmark = pytest.mark.integration


def test_doctor_shows_what_horovod_was_built_with(tmp_path: Path) -> None:
    done = run_hvdjob("doctor", cwd=tmp_path)
    assert done.returncode == 0, done.output
    text = done.stdout
    assert "[X] PyTorch 2." in text
    assert "[X] TensorFlow 2." in text and "tf-keras" in text
    assert "controllers:  [X] MPI  [X] Gloo" in text
    assert "verdict: ready" in text


def test_doctor_json_is_machine_readable(tmp_path: Path) -> None:
    done = run_hvdjob("doctor", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.output
    facts = json.loads(done.stdout)
    assert facts["ok"] is True
    assert facts["horovod"] == "0.28.1"
    assert facts["frameworks"]["torch"]["built"]["gloo"] is True
    assert facts["frameworks"]["tensorflow"]["built"]["mpi"] is True
    assert facts["tools"]["mpirun"]


def test_doctor_fails_with_one_line_when_horovod_cannot_load_with_a_framework(tmp_path: Path) -> None:
    # A torch whose import breaks the way an ABI mismatch does.
    (tmp_path / "torch.py").write_text("raise OSError('libc10.so: undefined symbol: _ZN3c104impl')\n")
    done = run_hvdjob("doctor", cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)})
    assert done.returncode == 1
    assert "horovod cannot be imported with torch: OSError: libc10.so: undefined symbol" in done.stdout
    assert "Traceback" not in done.output


def test_doctor_keeps_frameworks_out_of_its_own_process() -> None:
    code = (
        "import sys; from hvdrun_cli.doctor.facts import gather; facts = gather(); "
        "assert facts.ok, facts.problems; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'tensorflow', 'keras')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
