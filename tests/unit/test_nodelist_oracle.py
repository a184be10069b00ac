"""``expand_nodelist`` against Slurm itself: ``scontrol show hostnames <expr>``.

That subcommand expands locally and needs no running cluster, only a readable slurm.conf, so the
test writes a minimal one and points SLURM_CONF at it.
"""
from __future__ import annotations

import os
import shutil
import subprocess

from typing import Dict, List

import pytest

from hvdrun_cli.errors import HostfileError
from hvdrun_cli.hosts import expand_nodelist

SCONTROL = shutil.which("scontrol") or "/usr/bin/scontrol"

pytestmark = pytest.mark.skipif(
    not os.access(SCONTROL, os.X_OK), reason="scontrol (Slurm client) is not installed"
)

VALID = [
    "node[001-004,007]",
    "node[1-2],gpu-a[01-02]",
    "rack[1-2]-node[01-02]",
    "a[1-2]-b[1-2]-c[1-2]",
    "a[1-2]b[1-2]c[1-2]d[1-2]",
    "n[1-2][3-4]",
    "rack[0-3]_blade[0-2]",
    "tux[2,1-2]",
    "tux[0-5,12,20-25]",
    "n[08-11]",
    "n[98-100]",
    "n[01-3]",
    "n[1-03]",
    "n1[2-3],n1",
    "login.cluster.org,c-1.x[1-2]",
    "node21 node[27-34]",
    "a,,b",
    "[1-3]",
]

INVALID = ["n[3-1]", "n[1-2]x", "n[]", "n[a-b]", "n[-1]", "n[[1-2]]", "n[1-3]]", "n[1 ,2]"]


@pytest.fixture(scope="module")
def slurm_env(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, str]:
    conf = tmp_path_factory.mktemp("slurm") / "slurm.conf"
    conf.write_text(
        "ClusterName=oracle\n"
        "SlurmctldHost=localhost\n"
        "NodeName=localhost CPUs=1 State=UNKNOWN\n"
        "PartitionName=debug Nodes=localhost Default=YES\n"
    )
    return {**os.environ, "SLURM_CONF": str(conf)}


def scontrol_hostnames(expr: str, env: Dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SCONTROL, "show", "hostnames", expr],
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )


@pytest.mark.parametrize("expr", VALID)
def test_same_names_as_slurm(expr: str, slurm_env: Dict[str, str]) -> None:
    result = scontrol_hostnames(expr, slurm_env)
    assert result.returncode == 0, result.stderr
    expected: List[str] = result.stdout.split()
    assert expected, f"scontrol expanded {expr!r} to nothing: {result.stderr}"
    assert expand_nodelist(expr) == expected


@pytest.mark.parametrize("expr", INVALID)
def test_rejected_like_slurm(expr: str, slurm_env: Dict[str, str]) -> None:
    result = scontrol_hostnames(expr, slurm_env)
    # scontrol exits 0 here but prints "Invalid hostlist" instead of names.
    assert "Invalid hostlist" in result.stdout + result.stderr
    with pytest.raises(HostfileError):
        expand_nodelist(expr)
