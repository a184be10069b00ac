"""``hvdjob submit --dry-run`` and the Slurm job commands where no Slurm is needed or present."""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import List

import pytest
from click.testing import CliRunner

from hvdrun_cli.cli.main import cli
from hvdrun_cli.slurm import records
from hvdrun_cli.slurm.client import parse_scontrol

SPEC = """\
framework: torch
name: digits
train:
  epochs: 1
resources:
  np: 2
slurm:
  partition: debug
  time: "00:10:00"
  requeue: 1
  extra: ["--comment=two words"]
  setup: ["export OMP_NUM_THREADS=1"]
"""


@pytest.fixture
def spec_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "job.yaml"
    path.write_text(SPEC)
    return path


@pytest.fixture
def no_slurm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PATH with no Slurm tools on it."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def invoke(args: List[str]):
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def sbatch_values(script: str) -> List[str]:
    return [shlex.split(line)[1] for line in script.splitlines() if line.startswith("#SBATCH")]


def test_dry_run_prints_the_script_and_writes_nothing(spec_file: Path) -> None:
    result = invoke(["submit", str(spec_file), "--dry-run"])
    assert result.exit_code == 0, result.output
    values = sbatch_values(result.stdout)
    assert "--partition=debug" in values and "--time=00:10:00" in values
    assert "--comment=two words" in values and "--requeue" in values and "--ntasks=2" in values
    assert "export OMP_NUM_THREADS=1" in result.stdout.splitlines()
    assert not (spec_file.parent / "runs").exists()


def test_dry_run_forwards_spec_flags_to_hvdjob_run(spec_file: Path) -> None:
    result = invoke(["submit", str(spec_file), "--dry-run", "--set", "train.lr=0.5", "--np", "1"])
    assert result.exit_code == 0, result.output
    launch = next(line for line in result.stdout.splitlines() if line.endswith(" &"))
    argv = shlex.split(launch[:-2])
    assert argv[-6:] == ["run", str(spec_file), "--set", "train.lr=0.5", "--np", "1"]
    assert "--ntasks=1" in sbatch_values(result.stdout)  # the override reached the spec too


def test_output_goes_into_the_run_root(spec_file: Path) -> None:
    result = invoke(["submit", str(spec_file), "--dry-run"])
    output = next(v for v in sbatch_values(result.stdout) if v.startswith("--output="))
    assert output.startswith(f"--output={spec_file.parent / 'runs' / 'digits' / 'slurm'}/")
    assert output.endswith("/slurm-%j.out")


def test_short_extra_option_is_bad_input_with_the_key(spec_file: Path) -> None:
    spec_file.write_text(SPEC.replace('extra: ["--comment=two words"]', 'extra: ["-N 2"]'))
    result = CliRunner().invoke(cli, ["submit", str(spec_file), "--dry-run"])
    assert result.exit_code == 2
    assert "slurm.extra[0]" in result.stderr and "'-N 2'" in result.stderr
    assert "Traceback" not in result.output


def test_submit_without_sbatch_says_what_to_install(spec_file: Path, no_slurm: None) -> None:
    result = CliRunner().invoke(cli, ["submit", str(spec_file)])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "hvdjob: sbatch not found: hvdjob submit needs Slurm's client tools (install slurm-client)"
    )
    assert not (spec_file.parent / "runs").exists()


@pytest.mark.parametrize("args, tool", [(["status"], "squeue"), (["cancel", "12"], "scancel"),
                                        (["logs", "12"], "scontrol")])
def test_job_commands_without_slurm_fail_clearly(args: List[str], tool: str, no_slurm: None,
                                                  tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert f"{tool} not found: hvdjob {args[0]} needs Slurm's client tools" in result.stderr


@pytest.mark.parametrize("command", ["status", "logs", "cancel"])
def test_a_bad_job_id_is_bad_input(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "12;rm"])
    assert result.exit_code == 2
    assert "JOBID: is not a Slurm job id" in result.stderr


def test_logs_reads_the_recorded_output_file_without_slurm(tmp_path: Path, no_slurm: None) -> None:
    out = tmp_path / "slurm-7.out"
    out.write_text("epoch 1 loss 0.5\n")
    records.append(str(tmp_path / "runs"), records.Submission(
        job_id="7", name="digits", spec="/j.yaml", script="/s", output=str(out), error=str(tmp_path / "e"),
        cwd=str(tmp_path), submitted_at="2026-01-01T00:00:00+00:00"))
    result = CliRunner().invoke(cli, ["logs", "7", "--run-root", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    assert result.stdout == "epoch 1 loss 0.5\n"


def test_records_keep_every_submission_and_skip_damaged_lines(tmp_path: Path) -> None:
    root = str(tmp_path)
    for job_id in ("1", "2"):
        records.append(root, records.Submission(job_id, "n", "/s.yaml", "/x", f"/o{job_id}", "/e", "/cwd", "t"))
    with open(records.records_path(root), "a") as fh:
        fh.write("{not json\n")
    assert [s.job_id for s in records.load(root)] == ["1", "2"]
    assert records.find(root, "2").output == "/o2"
    assert records.find(root, "3") is None


def test_scontrol_fields_keep_spaces_in_paths_and_names() -> None:
    text = """JobId=5 JobName=my job
   UserId=root(0) GroupId=root(0) MCS_label=N/A
   JobState=RUNNING Reason=None Dependency=(null)
   WorkDir=/work/my dir
   StdErr=/work/my dir/slurm-5.err
   StdOut=/work/my dir/slurm-5.out
"""
    fields = parse_scontrol(text)
    assert fields["JobName"] == "my job"
    assert fields["JobState"] == "RUNNING"
    assert fields["StdOut"] == "/work/my dir/slurm-5.out"
    assert fields["StdErr"] == "/work/my dir/slurm-5.err"
