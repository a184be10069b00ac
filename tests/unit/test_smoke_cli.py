"""``hvdjob smoke`` on bad input: exit 2 with one line per problem, before anything is launched."""
from __future__ import annotations

import tempfile

import pytest
from click.testing import CliRunner

from hvdrun_cli.cli.smoke import smoke

BAD_SPEC = """\
framework: torch
train:
  epochs: 2
  lr: -0.1
"""


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """Temporary directories go under tmp_path, so a test can see whether any was left behind."""
    base = tmp_path / "tmp"
    base.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(base))
    return base


def _invoke(*args):
    return CliRunner().invoke(smoke, list(args))


def test_spec_errors_exit_2_with_file_line_and_leave_nothing(tmp_path, private_tmp):
    job = tmp_path / "job.yaml"
    job.write_text(BAD_SPEC)
    result = _invoke(str(job))
    assert result.exit_code == 2
    assert f"hvdjob: error: {job}:4: train.lr: must be greater than 0 (got -0.1)" in result.output
    assert "Traceback" not in result.output
    assert list(private_tmp.iterdir()) == []


def test_missing_spec_file(tmp_path, private_tmp):
    result = _invoke(str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2 and "hvdjob: error:" in result.output and "nope.yaml" in result.output


def test_bad_set_option(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text("framework: torch\ntrain: {}\n")
    result = _invoke(str(job), "--set", "train.lr")
    assert result.exit_code == 2 and "--set: expected KEY=VALUE" in result.output


def test_work_dir_must_be_empty(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text("framework: torch\ntrain: {}\n")
    used = tmp_path / "used"
    (used / "checkpoints").mkdir(parents=True)
    result = _invoke(str(job), "--work-dir", str(used))
    assert result.exit_code == 2 and "--work-dir: must be an empty directory" in result.output


def test_junit_into_missing_directory(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text("framework: torch\ntrain: {}\n")
    result = _invoke(str(job), "--junit", str(tmp_path / "no" / "such" / "smoke.xml"))
    assert result.exit_code == 2 and "--junit: cannot write the report" in result.output


def test_too_few_steps_is_a_usage_error(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text("framework: torch\ntrain: {}\n")
    result = _invoke(str(job), "--steps", "2")
    assert result.exit_code == 2 and "--steps" in result.output
