"""``hvdjob bench``: bad flags and specs exit 2 with one line per problem, before any run starts."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from hvdrun_cli.cli.bench import bench


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "job.yaml").write_text("framework: torch\ntrain:\n  lr: fast\n")
    (tmp_path / "ok.yaml").write_text("framework: torch\ntrain: {}\n")
    return tmp_path


def invoke(*args: str):
    return CliRunner().invoke(bench, list(args))


def test_bad_np_list(workdir: Path) -> None:
    result = invoke("ok.yaml", "--np", "1,x")
    assert result.exit_code == 2
    assert result.stderr == "hvdjob: error: --np: every entry must be a whole number >= 1 (got 'x')\n"
    assert not (workdir / "runs").exists()


def test_bad_spec_is_reported_with_its_line(workdir: Path) -> None:
    result = invoke("job.yaml", "--np", "1,2")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == ["hvdjob: error: job.yaml:3: train.lr: must be a number (got 'fast')"]
    assert not (workdir / "runs").exists()


def test_missing_spec_and_bad_repeats(workdir: Path) -> None:
    result = invoke("nope.yaml")
    assert (result.exit_code, result.stderr) == (2, "hvdjob: error: nope.yaml: no such file\n")
    result = invoke("ok.yaml", "--repeats", "0")
    assert result.exit_code == 2 and "--repeats" in result.stderr
