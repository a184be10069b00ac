"""``hvdjob validate``: the OK line, JSON output and exit codes."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from hvdrun_cli.cli.main import cli


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.py").write_text("print('hi')\n")
    return tmp_path


def invoke(*args: str):
    return CliRunner().invoke(cli, ["validate", *args])


def test_ok_line_for_managed_and_script_specs(workdir):
    (workdir / "job.yaml").write_text("framework: torch\ntrain: {}\n")
    (workdir / "script.yaml").write_text("framework: tensorflow\nscript: train.py\nresources:\n  np: 3\n")
    result = invoke("job.yaml", "--np", "4")
    assert (result.exit_code, result.stdout) == (0, "job.yaml: OK (torch, managed, np=4)\n")
    result = invoke("script.yaml")
    assert (result.exit_code, result.stdout) == (0, "script.yaml: OK (tensorflow, script, np=3)\n")
    result = invoke("job.yaml")
    assert result.stdout == "job.yaml: OK (torch, managed, np=1)\n"  # the np that will run, not "auto"
    (workdir / "hosts.yaml").write_text("framework: torch\ntrain: {}\nresources: {hosts: [a:2, b:3]}\n")
    assert invoke("hosts.yaml").stdout == "hosts.yaml: OK (torch, managed, np=5)\n"
    (workdir / "elastic.yaml").write_text("framework: torch\ntrain: {}\nelastic: {min_np: 2, max_np: 4, hostfile: h}\n")
    (workdir / "h").write_text("a:2\n")
    assert invoke("elastic.yaml").stdout == "elastic.yaml: OK (torch, managed, elastic np=2..4)\n"


def test_problems_go_to_stderr_one_line_each_with_exit_2(workdir):
    (workdir / "job.yaml").write_text("framework: torch\ntrain:\n  lr: fast\n  epochs: 0\n")
    result = invoke("job.yaml", "--launcher", "foo")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "hvdjob: error: job.yaml:3: train.lr: must be a number (got 'fast')",
        "hvdjob: error: job.yaml:4: train.epochs: must be at least 1 (got 0)",
        "hvdjob: error: --launcher: launcher: must be one of 'auto', 'gloo', 'mpi', 'srun' (got 'foo')",
    ]


def test_missing_spec_file(workdir):
    result = invoke("job.yaml")
    assert result.exit_code == 2
    assert result.stderr == "hvdjob: error: job.yaml: no such file\n"


def test_json_output(workdir):
    (workdir / "job.yaml").write_text("framework: torch\ntrain: {}\n")
    result = invoke("job.yaml", "--json", "--set", "train.epochs=3")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["ok"] is True
    assert data["summary"] == "torch, managed, np=1"
    assert data["np"] == 1
    assert data["spec"]["train"]["epochs"] == 3
    assert data["spec"]["run_root"] == str(workdir / "runs")


def test_json_problems(workdir):
    (workdir / "job.yaml").write_text("framework: torch\ntrain:\n  lr: fast\n")
    result = invoke("job.yaml", "--json", "--np", "0")
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    assert data["ok"] is False
    assert data["problems"] == [
        {"message": "must be a number", "file": "job.yaml", "line": 3, "column": None, "key": "train.lr",
         "got": "fast", "text": "job.yaml:3: train.lr: must be a number (got 'fast')"},
        {"message": "must be at least 1", "file": "--np", "line": None, "column": None, "key": "resources.np",
         "got": 0, "text": "--np: resources.np: must be at least 1 (got 0)"},
    ]


def test_validate_imports_no_training_framework(workdir):
    """``hvdjob validate`` runs on login nodes: loading a spec must not pull in torch/TF/Horovod."""
    (workdir / "job.yaml").write_text("framework: torch\ntrain: {}\n")
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from hvdrun_cli.cli.main import cli\n"
        "result = CliRunner().invoke(cli, ['validate', 'job.yaml'])\n"
        "assert result.exit_code == 0, result.output\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'tensorflow', 'horovod', 'keras'))\n"
        "print(heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=workdir, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
