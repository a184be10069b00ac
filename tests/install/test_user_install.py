"""hvdjob installed the way users install it: a built wheel in a fresh venv with no framework at all.

A login node where users ``pip install hvdjob`` to submit jobs has neither torch, TensorFlow nor
Horovod. The launcher side must work there (``--help``, ``validate``, ``run --dry-run``,
``submit --dry-run``), and what needs a framework (``doctor``, ``run``) must say in one line what is
missing. The editable install in the development venv cannot show this: it sees the checkout and
whatever the venv's other packages happen to import.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import pytest

pytestmark = pytest.mark.install
REPO = Path(__file__).resolve().parents[2]
JOBS = REPO / "jobs"


@dataclass(frozen=True)
class FreshVenv:
    root: Path
    wheel: Path

    @property
    def hvdjob(self) -> str:
        return str(self.root / "bin" / "hvdjob")

    @property
    def python(self) -> str:
        return str(self.root / "bin" / "python")


def _clean_env() -> Dict[str, str]:
    """The user's environment: no checkout on PYTHONPATH, no development venv on PATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if p and Path(sys.executable).parent != Path(p)
    )
    return env


def _run(argv: List[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, env=_clean_env(), capture_output=True, text=True, timeout=timeout,
                          check=False)


def _not_shipped(directory: str, names: List[str]) -> List[str]:
    """What a checkout has besides the package sources (hvdrun_cli/adapters is a development symlink)."""
    skip = {".git", "runs", "build", "__pycache__", ".pytest_cache", "tests", "benchmarks"}
    dropped = [n for n in names if n in skip or n.startswith(".venv") or n.endswith(".egg-info")]
    if Path(directory) == REPO / "hvdrun_cli" and "adapters" in names:
        dropped.append("adapters")
    return dropped


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> FreshVenv:
    base = tmp_path_factory.mktemp("user-install")
    source = base / "source"  # a copy, so the build leaves no build/ or *.egg-info in the checkout
    shutil.copytree(REPO, source, ignore=_not_shipped)
    dist = base / "dist"
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist), str(source)], base)
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("hvdjob-*.whl")
    root = base / "venv"
    made = _run([sys.executable, "-m", "venv", str(root)], base)
    assert made.returncode == 0, made.stderr
    installed = _run([str(root / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)], base)
    assert installed.returncode == 0, installed.stderr
    return FreshVenv(root, wheel)


def test_the_venv_has_hvdjob_from_the_wheel_and_no_framework(venv: FreshVenv, tmp_path: Path) -> None:
    code = (
        "import importlib.util as u, hvdrun_cli; "
        "print(hvdrun_cli.__file__); "
        "print([m for m in ('torch', 'tensorflow', 'horovod') if u.find_spec(m)])"
    )
    done = _run([venv.python, "-c", code], tmp_path)
    assert done.returncode == 0, done.stderr
    location, frameworks = done.stdout.splitlines()
    assert location.startswith(str(venv.root)), "hvdjob must come from the installed wheel, not the checkout"
    assert frameworks == "[]"


def test_the_wheel_ships_the_rank_side_and_the_build_scripts(venv: FreshVenv, tmp_path: Path) -> None:
    code = (
        "import importlib.resources as r, hvdrun_cli.adapters.worker, hvdrun_cli.adapters.base; "
        "print(sorted(p.name for p in r.files('hvdrun_cli.buildtools').iterdir() if p.name.endswith('.sh')))"
    )
    done = _run([venv.python, "-c", code], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "setup_env.sh" in done.stdout and "cxx_wrapper.sh" in done.stdout


def test_help_lists_the_commands(venv: FreshVenv, tmp_path: Path) -> None:
    done = _run([venv.hvdjob, "--help"], tmp_path)
    assert done.returncode == 0, done.stderr
    for command in ("run", "validate", "submit", "doctor", "smoke"):
        assert f"  {command} " in done.stdout


@pytest.mark.parametrize("job, framework", [("digits-torch.yaml", "torch"), ("digits-keras.yaml", "tensorflow")])
def test_validate_works_without_frameworks(venv: FreshVenv, tmp_path: Path, job: str, framework: str) -> None:
    done = _run([venv.hvdjob, "validate", str(JOBS / job)], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{job}: OK ({framework}" in done.stdout


def test_validate_still_reports_bad_input_with_exit_2(venv: FreshVenv, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("framework: torch\ntrain:\n  model: mlp\n  data: digits\n  lr: fast\n")
    done = _run([venv.hvdjob, "validate", str(bad)], tmp_path)
    assert done.returncode == 2
    assert "bad.yaml:5: train.lr" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_run_dry_run_prints_the_plan(venv: FreshVenv, tmp_path: Path) -> None:
    done = _run([venv.hvdjob, "run", str(JOBS / "digits-torch.yaml"), "--dry-run"], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ranks:     2 on 1 host(s)" in done.stdout
    assert "hvdrun_cli.adapters.worker" in done.stdout
    assert venv.python in done.stdout, "the ranks must run the installed venv's Python"


def test_submit_dry_run_prints_the_sbatch_script(venv: FreshVenv, tmp_path: Path) -> None:
    done = _run([venv.hvdjob, "submit", str(JOBS / "slurm-digits.yaml"), "--dry-run"], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("#!/bin/bash")
    assert "#SBATCH --ntasks-per-node=2" in done.stdout


def _one_clean_line(done: subprocess.CompletedProcess, must_say: str) -> None:
    text = done.stdout + done.stderr
    assert "Traceback" not in text, text
    assert [line for line in text.splitlines() if must_say in line], text


def test_doctor_names_what_is_missing(venv: FreshVenv, tmp_path: Path) -> None:
    done = _run([venv.hvdjob, "doctor"], tmp_path)
    assert done.returncode == 1
    _one_clean_line(done, "problem: horovod is not installed in this Python")


def test_doctor_json_names_what_is_missing(venv: FreshVenv, tmp_path: Path) -> None:
    import json

    done = _run([venv.hvdjob, "doctor", "--json"], tmp_path)
    assert done.returncode == 1
    facts = json.loads(done.stdout)
    assert facts["ok"] is False and facts["horovod"] is None
    assert done.stderr.strip().startswith("hvdjob: horovod is not installed")


def test_run_names_what_is_missing(venv: FreshVenv, tmp_path: Path) -> None:
    done = _run([venv.hvdjob, "run", str(JOBS / "digits-torch.yaml")], tmp_path)
    assert done.returncode in (1, 2)
    _one_clean_line(done, "horovod is not importable here")
