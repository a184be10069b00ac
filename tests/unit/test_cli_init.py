"""``hvdjob init``: starter specs that validate, never overwriting a file."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from hvdrun_cli.cli.main import cli
from hvdrun_cli.spec import load_spec
from hvdrun_cli.spec.model import TrainSpec


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text("import horovod.tensorflow.keras as hvd\n")
    return tmp_path


def invoke(*args: str):
    return CliRunner().invoke(cli, ["init", *args])


def test_script_starter_validates_and_points_at_the_script(work: Path) -> None:
    (work / "jobs").mkdir()
    result = invoke("jobs/train.yaml", "--script", "src/train.py")
    assert result.exit_code == 0, result.output
    spec = load_spec(work / "jobs" / "train.yaml")
    assert spec.framework == "tensorflow" and spec.script == str(work / "src" / "train.py")
    assert spec.resources.np == 2 and spec.name == "train"
    text = (work / "jobs" / "train.yaml").read_text()
    assert "script: ../src/train.py" in text and "read from its imports: horovod.tensorflow.keras" in text
    assert "# slurm:" in text  # optional sections come commented out
    validate = CliRunner().invoke(cli, ["validate", "jobs/train.yaml"])
    assert validate.exit_code == 0 and validate.stdout == "jobs/train.yaml: OK (tensorflow, script, np=2)\n"


@pytest.mark.parametrize("framework", ["torch", "tensorflow"])
def test_managed_starter_validates_with_the_models_defaults(work: Path, framework: str) -> None:
    result = invoke("--managed", "--framework", framework)
    assert result.exit_code == 0, result.output
    spec = load_spec(work / "job.yaml")
    assert spec.framework == framework and spec.managed and spec.train == TrainSpec()
    assert "wrote job.yaml" in result.stderr


def test_init_never_overwrites(work: Path) -> None:
    (work / "job.yaml").write_text("mine\n")
    result = invoke("--managed")
    assert result.exit_code == 2
    assert result.stderr == ("hvdjob: error: job.yaml: already exists; hvdjob init does not overwrite a spec "
                             "(choose another FILE or remove it)\n")
    assert (work / "job.yaml").read_text() == "mine\n"


def test_init_prints_to_stdout_with_dash(work: Path) -> None:
    result = invoke("-", "--managed")
    assert result.exit_code == 0 and result.stdout.startswith("# Starter job spec written by 'hvdjob init'.")
    assert not (work / "job.yaml").exists()


@pytest.mark.parametrize("args, fragment", [
    ([], "give either --script SCRIPT.py"),
    (["--managed", "--script", "src/train.py"], "give either --script SCRIPT.py"),
    (["--script", "missing.py"], "missing.py: no such script file"),
])
def test_init_refuses_unclear_requests(work: Path, args, fragment: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2 and fragment in result.stderr and "Traceback" not in result.output
