"""Bad hostfiles, host lists and layouts fail `validate` and `run` cleanly (exit 2, located), creating nothing."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from hvdrun_cli.cli.main import cli

CASES = [
    # (hostfile text or None, spec resources, extra flags, expected fragments)
    ("a slots=2\nb slots=zero\n", "{hostfile: hosts.txt}", [], ["hosts.txt:2: slots must be a positive integer (got 'zero')"]),
    ("a slots=2\n# comment\na:2\n", "{hostfile: hosts.txt}", [], ["hosts.txt:3: duplicate host 'a' (first listed at line 1)"]),
    ("a slots=2 colour=red\n", "{hostfile: hosts.txt}", [], ["hosts.txt:1:", "colour"]),
    ("a:2\n", "{hostfile: hosts.txt, np: 3}", [], ["job.yaml:3: resources.np: Requested more processes (3) than there are available slots (2)"]),
    (None, "{hosts: [a:2, b:1], np: 4}", [], ["resources.np: Requested more processes (4)", "a:2, b:1"]),
    (None, "{np: 2}", ["-H", "b:x"], ["-H: ", "(got 'b:x')"]),
    (None, "{np: 2}", ["--np", "9", "-H", "a:2"], ["--np: resources.np: Requested more processes (9) than there are"
                                                   " available slots (2)"]),
    ("a\na\nb slots=2\nb slots=2\n", "{hostfile: hosts.txt}", [], ["hosts.txt:4: duplicate host 'b'"]),
    (None, "{hosts: [a:2, 'b:5000']}", [], ["job.yaml:3: resources.hosts[1]: slot count must be at most 4096"]),
    # 65 hosts x 4096 slots and no np: more ranks than the limit, refused before one rank is placed
    ("".join(f"n{i}:4096\n" for i in range(65)), "{hostfile: hosts.txt}", [],
     ["job.yaml:3: resources.np: hostfile hosts.txt has 266240 slots, more than hvdjob's limit of 262144 ranks"]),
    (None, "{np: 2}", ["-H", "a:100000000"], ["-H: resources.hosts: slot count must be at most 4096"]),
]


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("hostfile, resources, flags, expected", CASES)
def test_bad_hosts_are_reported_cleanly(tmp_path: Path, monkeypatch, command, hostfile, resources, flags, expected):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.py").write_text("print('hi')\n")
    if hostfile is not None:
        (tmp_path / "hosts.txt").write_text(hostfile)
    (tmp_path / "job.yaml").write_text(f"framework: torch\nscript: train.py\nresources: {resources}\n")
    args = [command, "job.yaml", *flags] + (["--dry-run"] if command == "run" else [])
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for fragment in expected:
        assert fragment in result.stderr
    assert all(line.startswith("hvdjob: error: ") for line in result.stderr.splitlines())
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("command", ["validate", "run", "submit"])
def test_spec_flag_hosts_and_layout_problems_in_one_report(tmp_path: Path, monkeypatch, command):
    """Two spec errors, a bad --set, a duplicate host and an np that does not fit: all in one go."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "hosts.txt").write_text("a slots=2\nb slots=1\na slots=2\n")
    (tmp_path / "jobs" / "job.yaml").write_text(
        "framework: torch\ntrain:\n  epoch: 2\n  lr: -1\nresources:\n  hostfile: hosts.txt\n  np: 8\n")
    args = [command, "jobs/job.yaml", "--set", "train.batch_size"] + (["--dry-run"] if command != "validate" else [])
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        "hvdjob: error: jobs/job.yaml:3: train.epoch: unknown key; did you mean 'epochs'?",
        "hvdjob: error: jobs/job.yaml:4: train.lr: must be greater than 0 (got -1)",
        "hvdjob: error: --set: expected KEY=VALUE, e.g. --set train.lr=0.1 (got 'train.batch_size')",
        "hvdjob: error: jobs/hosts.txt:3: duplicate host 'a' (first listed at line 1); a host with a slot count is"
        " listed once (only bare lines repeat, one slot each)",
    ]
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("command", ["validate", "run"])
def test_layout_problem_is_reported_with_spec_problems(tmp_path: Path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hosts.txt").write_text("a\na\nb\n")  # machinefile form: a has 2 slots, b 1
    (tmp_path / "job.yaml").write_text("framework: torch\ntrain: {epochs: 0}\nresources:\n  hostfile: hosts.txt\n"
                                       "  np: 4\n")
    result = CliRunner().invoke(cli, [command, "job.yaml"] + (["--dry-run"] if command == "run" else []))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "hvdjob: error: job.yaml:2: train.epochs: must be at least 1 (got 0)",
        "hvdjob: error: job.yaml:5: resources.np: Requested more processes (4) than there are available slots (3)"
        " on hosts a:2, b:1 (from hosts.txt)",
    ]
