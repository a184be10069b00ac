"""Unmodified Horovod scripts run with ``hvdjob run --np 2 SCRIPT ARGS``: no spec, framework from the imports.

Each script prints a checksum of its final weights on every rank; the ranks must agree, and the
spec ``--save-spec`` writes must validate and run the same job again (same checksum).
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Dict

import pytest

from tests.hvdjob_process import read_json, run_hvdjob

pytestmark = pytest.mark.integration
SCRIPTS = Path(__file__).parent / "scripts"
CHECKSUM = re.compile(r"^\[(\d)\] rank (\d) of 2: .* checksum (\S+)$", re.M)


def checksums(output: str) -> Dict[int, str]:
    found = {int(rank): value for _, rank, value in CHECKSUM.findall(output)}
    assert sorted(found) == [0, 1], output
    return found


def test_unmodified_torch_script_runs_without_a_spec_and_its_saved_spec_runs_the_same(tmp_path: Path) -> None:
    shutil.copy(SCRIPTS / "user_torch_train.py", tmp_path / "train.py")
    first = run_hvdjob("run", "--np", "2", "--save-spec", "train.yaml", "train.py", "--steps", "12", cwd=tmp_path)
    assert first.returncode == 0, first.output
    assert "framework read from its imports: horovod.torch (line 7)" in first.stderr
    ranks = checksums(first.stdout)
    assert ranks[0] == ranks[1]  # the ranks agree
    assert "steps 12" in first.stdout  # the script's own argument reached it
    run_dir = first.run_dir()
    assert run_dir.parent == tmp_path / "runs" / "train"
    assert read_json(run_dir / "spec.json")["args"] == ["--steps", "12"]
    assert read_json(run_dir / "result.json")["exit_code"] == 0

    validated = run_hvdjob("validate", "train.yaml", cwd=tmp_path)
    assert validated.returncode == 0 and validated.stdout == "train.yaml: OK (torch, script, np=2)\n"
    again = run_hvdjob("run", "train.yaml", cwd=tmp_path)
    assert again.returncode == 0, again.output
    assert checksums(again.stdout) == ranks  # the same job: same seeds, same steps, same weights


def test_unmodified_keras_script_runs_without_a_spec(tmp_path: Path) -> None:
    shutil.copy(SCRIPTS / "user_keras_train.py", tmp_path / "keras_train.py")
    finished = run_hvdjob("run", "--np", "2", "--", "python", "keras_train.py", "--epochs", "2", cwd=tmp_path,
                          timeout=600)
    assert finished.returncode == 0, finished.output
    assert "tensorflow script job, framework read from its imports: horovod.tensorflow.keras" in finished.stderr
    ranks = checksums(finished.stdout)
    assert ranks[0] == ranks[1]
    assert "epochs 2" in finished.stdout
