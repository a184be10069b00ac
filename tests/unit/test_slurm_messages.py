"""``status``/``logs``/``cancel`` where Slurm has no configuration: one line (or JSON), no tool spew."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from hvdrun_cli.cli.main import cli

# What Debian's Slurm 22 tools print here (no slurm.conf, no SLURM_CONF, no DNS SRV record).
UNCONFIGURED = """#!/bin/sh
echo "$(basename "$0"): error: resolve_ctls_from_dns_srv: res_nsearch error: Unknown host" >&2
echo "$(basename "$0"): error: fetch_config: DNS SRV lookup failed" >&2
echo "$(basename "$0"): fatal: Could not establish a configuration source" >&2
exit 1
"""


@pytest.fixture
def unconfigured_slurm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("squeue", "scontrol", "scancel", "sacct"):
        (bin_dir / tool).write_text(UNCONFIGURED)
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("args", [["status", "12"], ["logs", "12"], ["cancel", "12"]])
def test_without_a_slurm_configuration_each_command_says_so_in_one_line(unconfigured_slurm: Path, args) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines == [f"hvdjob: {args[0]} needs a Slurm cluster, and none is configured on this machine "
                     "(no slurm.conf, SLURM_CONF not set)"]


def test_status_json_prints_json_for_no_jobs_and_for_errors(unconfigured_slurm: Path) -> None:
    assert json.loads(CliRunner().invoke(cli, ["status", "--json"]).output) == []
    failed = CliRunner().invoke(cli, ["status", "12", "--json"])
    assert failed.exit_code == 1
    assert "needs a Slurm cluster" in json.loads(failed.output)["error"]
    bad = CliRunner().invoke(cli, ["status", "x", "--json"])
    assert bad.exit_code == 2 and "is not a Slurm job id" in json.loads(bad.output)["error"]
