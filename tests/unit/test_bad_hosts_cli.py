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
    ("a:2\n", "{hostfile: hosts.txt, np: 3}", [], ["job.yaml: resources.np: Requested more processes (3) than there are available slots (2)"]),
    (None, "{hosts: [a:2, b:1], np: 4}", [], ["resources.np: Requested more processes (4)", "a:2, b:1"]),
    (None, "{np: 2}", ["-H", "b:x"], ["-H: ", "(got 'b:x')"]),
    (None, "{np: 2}", ["--np", "9", "-H", "a:2"], ["Requested more processes (9) than there are available slots (2)"]),
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
