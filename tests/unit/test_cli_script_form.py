"""``hvdjob run``/``submit`` with a script instead of a spec, the wrong file given to a spec command,
horovodrun/torchrun spellings, and ``--json`` without ``--dry-run``. No ranks start here."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import List

import pytest
import yaml
from click.testing import CliRunner

from hvdrun_cli.cli.main import cli
from hvdrun_cli.spec import load_spec

TORCH_SCRIPT = "import argparse\nimport horovod.torch as hvd\n\nhvd.init()\n"
KERAS_SCRIPT = "import tensorflow as tf\nfrom horovod.tensorflow import keras as hvd\n"


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.py").write_text(TORCH_SCRIPT)
    (tmp_path / "keras_train.py").write_text(KERAS_SCRIPT)
    return tmp_path


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def saved(work: Path, *args: str, name: str = "saved.yaml") -> dict:
    """Run a dry run that saves the spec; return the saved file's values."""
    result = invoke("run", "--dry-run", "--save-spec", name, *args)
    assert result.exit_code == 0, result.output
    return yaml.safe_load((work / name).read_text())


def plan(*args: str) -> dict:
    result = invoke("run", "--dry-run", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_script_runs_without_a_spec_and_its_arguments_stay_its_own(work: Path) -> None:
    result = invoke("run", "--np", "2", "--dry-run", "train.py", "--epochs", "5", "--np", "3")
    assert result.exit_code == 0, result.output
    assert "ranks:     2 on 1 host(s)" in result.stdout  # hvdjob's --np, not the script's
    assert "train.py: torch script job, framework read from its imports: horovod.torch (line 2)" in result.stderr
    assert "note: --np after train.py go to the script" in result.stderr
    data = saved(work, "--np", "2", "train.py", "--epochs", "5", "--np", "3")
    assert data["args"] == ["--epochs", "5", "--np", "3"]
    assert data["resources"] == {"np": 2}


@pytest.mark.parametrize("form", [
    ["--", "python", "train.py", "--lr", "1"],
    ["python3", "-u", "train.py", "--lr", "1"],
    ["--", "train.py", "--lr", "1"],
])
def test_horovodrun_style_python_command(work: Path, form: List[str]) -> None:
    data = saved(work, "--np", "2", *form)
    assert data["script"] == "train.py"
    assert data["args"] == ["--lr", "1"]


def test_python_without_a_script_is_a_clear_error(work: Path) -> None:
    result = invoke("run", "--np", "2", "--", "python", "-c", "print(1)")
    assert result.exit_code == 2
    assert "give the script to run after python" in result.stderr and "Traceback" not in result.output


def test_a_spec_still_takes_options_on_either_side(work: Path) -> None:
    (work / "job.yaml").write_text("framework: torch\nscript: train.py\n")
    assert plan("job.yaml", "--np", "3")["np"] == 3
    assert plan("--np", "3", "job.yaml")["np"] == 3
    result = invoke("run", "job.yaml", "extra", "--dry-run")
    assert result.exit_code == 2 and "unexpected arguments after job.yaml: extra" in result.output


def test_framework_is_detected_or_given(work: Path) -> None:
    assert saved(work, "keras_train.py")["framework"] == "tensorflow"
    assert saved(work, "--framework", "tensorflow", "train.py", name="other.yaml")["framework"] == "tensorflow"
    (work / "plain.py").write_text("print('no framework here')\n")
    result = invoke("run", "--dry-run", "plain.py")
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("hvdjob: error: plain.py: imports none of horovod.torch")
    assert "--framework torch or --framework tensorflow" in result.stderr


def test_a_missing_script_is_named(work: Path) -> None:
    result = invoke("run", "--np", "2", "nope.py")
    assert result.exit_code == 2
    assert result.stderr == "hvdjob: error: nope.py: no such script file\n"


def test_saved_spec_validates_and_is_the_same_job(work: Path) -> None:
    (work / "hosts.txt").write_text("localhost slots=4\n")
    sub = work / "specs"
    sub.mkdir()
    args = ["--np", "3", "--hostfile", "hosts.txt", "--set", "env.MY_FLAG=1", "--network-interfaces", "lo",
            "--start-timeout", "90", "train.py", "--epochs", "2"]
    first = plan(*args)
    data = saved(work, *args, name="specs/job.yaml")
    assert data["script"] == "../train.py"  # relative to the spec's directory
    assert data["resources"]["hostfile"] == "../hosts.txt"
    assert data["horovod"] == {"network_interfaces": ["lo"]}
    assert data["env"] == {"MY_FLAG": "1", "HOROVOD_GLOO_TIMEOUT_SECONDS": "90"}
    assert invoke("validate", "specs/job.yaml").stdout == "specs/job.yaml: OK (torch, script, np=3)\n"
    again = plan("specs/job.yaml")
    for key in ("np", "launcher", "layout", "notes", "hosts"):
        assert again[key] == first[key], key
    assert again["env"]["HOROVOD_GLOO_TIMEOUT_SECONDS"] == "90"
    from_file = load_spec(work / "specs" / "job.yaml").to_dict()
    assert from_file["args"] == ["--epochs", "2"] and from_file["script"] == str(work / "train.py")


def test_save_spec_never_overwrites_and_needs_a_script(work: Path) -> None:
    (work / "taken.yaml").write_text("framework: torch\nscript: train.py\n")
    result = invoke("run", "--dry-run", "--save-spec", "taken.yaml", "train.py")
    assert result.exit_code == 2
    assert "taken.yaml: --save-spec: already exists" in result.stderr
    assert (work / "taken.yaml").read_text() == "framework: torch\nscript: train.py\n"
    result = invoke("run", "--dry-run", "--save-spec", "new.yaml", "taken.yaml")
    assert result.exit_code == 2 and "--save-spec: only applies to a script run" in result.stderr


@pytest.mark.parametrize("command", [["validate"], ["smoke"], ["bench"]])
def test_a_script_where_a_spec_is_expected_gets_one_line(work: Path, command: List[str]) -> None:
    result = invoke(*command, "train.py")
    assert result.exit_code == 2
    assert result.stderr == ("hvdjob: error: train.py: is a Python script, not a job spec; run it with "
                             "'hvdjob run --np 2 train.py [SCRIPT ARGS...]', or write a spec for it with "
                             "'hvdjob init --script train.py'\n")


def test_a_file_that_is_not_yaml_gets_one_line(work: Path) -> None:
    (work / "notes.txt").write_text("key: value: other\n")
    result = invoke("validate", "notes.txt")
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("hvdjob: error: notes.txt:1:")
    assert "is not a job spec (a YAML mapping such as 'framework: torch')" in result.stderr
    (work / "run.sh").write_text("#!/bin/bash\necho hi\n")
    result = invoke("validate", "run.sh")
    assert result.exit_code == 2 and "run.sh: is a script run by '/bin/bash', not a job spec" in result.stderr
    (work / "tool").write_text("#!/usr/bin/env python3\nimport horovod.torch\n")
    assert "tool: is a Python script, not a job spec" in invoke("validate", "tool").stderr


@pytest.mark.parametrize("flag", ["--np", "-np", "--nproc-per-node"])
def test_horovodrun_and_torchrun_spellings_of_np(work: Path, flag: str) -> None:
    assert plan(flag, "3", "train.py")["np"] == 3


def test_start_timeout_reaches_every_rank(work: Path) -> None:
    assert plan("--start-timeout", "120", "train.py")["env"]["HOROVOD_GLOO_TIMEOUT_SECONDS"] == "120"
    result = invoke("run", "--dry-run", "--start-timeout", "0", "train.py")
    assert result.exit_code == 2


def test_verbose_prints_the_plan_and_json_needs_dry_run(work: Path) -> None:
    result = invoke("run", "--json", "train.py")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "hvdjob: error: --json: only works with --dry-run, where it prints the plan as JSON; a run's outcome is "
        "written to result.json in its run directory")
    assert not (work / "runs").exists()


def test_submit_takes_a_script_and_submits_its_spec(work: Path) -> None:
    result = invoke("submit", "--dry-run", "--np", "4", "train.py", "--epochs", "3")
    assert result.exit_code == 0, result.output
    run_line = next(line for line in result.stdout.splitlines() if "-m hvdrun_cli run" in line)
    spec_path = run_line.split(" run ", 1)[1].split()[0]
    assert spec_path.startswith(str(work / "runs" / "train" / "slurm")) and spec_path.endswith("/job.yaml")
    assert run_line.split(" run ", 1)[1].split() == [spec_path, "&"]  # the flags' values are in the spec file
    assert "submit would write the script job's spec to" in result.stderr
    result = invoke("submit", "--dry-run", "--np", "4", "--save-spec", "mine.yaml", "train.py", "--epochs", "3")
    assert result.exit_code == 0, result.output
    assert str(work / "mine.yaml") in result.stdout
    assert load_spec(work / "mine.yaml").resources.np == 4


def test_submit_of_a_script_writes_the_spec_it_submits(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a stand-in sbatch that only prints a job id: the script it gets runs a spec that validates."""
    bin_dir = work / "bin"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"
    sbatch.write_text("#!/bin/sh\necho 42\n")
    sbatch.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    result = invoke("submit", "--np", "2", "train.py", "--epochs", "3")
    assert result.exit_code == 0, result.output
    (job_dir,) = (work / "runs" / "train" / "slurm").iterdir()
    spec = load_spec(job_dir / "job.yaml")
    assert spec.resources.np == 2 and spec.args == ("--epochs", "3") and spec.script == str(work / "train.py")
    assert f"run {job_dir / 'job.yaml'} &" in (job_dir / "job.sbatch").read_text()
