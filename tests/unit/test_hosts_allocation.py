"""Hosts from the scheduler environment: Slurm variables and PBS's node file."""
from __future__ import annotations

from pathlib import Path

import pytest

from hvdrun_cli.errors import HostfileError
from hvdrun_cli.hosts import Host, hosts_from_pbs, hosts_from_slurm, in_slurm_allocation


@pytest.mark.parametrize(
    "environ, expected",
    [
        ({"SLURM_JOB_ID": "7", "SLURM_JOB_NODELIST": "n[1-3]", "SLURM_TASKS_PER_NODE": "2(x2),1"},
         [("n1", 2), ("n2", 2), ("n3", 1)]),
        ({"SLURM_JOB_ID": "7", "SLURM_NODELIST": "gpu[01-02]", "SLURM_TASKS_PER_NODE": "4(x2)"},
         [("gpu01", 4), ("gpu02", 4)]),
        ({"SLURM_JOB_ID": "7", "SLURM_JOB_NODELIST": "a,b", "SLURM_NTASKS_PER_NODE": "3"},
         [("a", 3), ("b", 3)]),
        ({"SLURM_JOB_ID": "7", "SLURM_JOB_NODELIST": "a,b"}, [("a", 1), ("b", 1)]),
        ({"SLURM_JOB_ID": "7", "SLURM_JOB_NODELIST": "localhost", "SLURM_TASKS_PER_NODE": "2"},
         [("localhost", 2)]),
        # SLURM_TASKS_PER_NODE wins over SLURM_NTASKS_PER_NODE
        ({"SLURM_JOB_ID": "7", "SLURM_JOB_NODELIST": "a,b", "SLURM_TASKS_PER_NODE": "1,2",
          "SLURM_NTASKS_PER_NODE": "5"}, [("a", 1), ("b", 2)]),
    ],
)
def test_slurm_allocation(environ: dict, expected: list) -> None:
    assert in_slurm_allocation(environ)
    assert hosts_from_slurm(environ) == tuple(Host(n, s) for n, s in expected)


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"SLURM_JOB_ID": "7"},  # no nodelist
        {"SLURM_JOB_NODELIST": "n[1-2]"},  # stale nodelist without a job
        {"SLURM_JOB_ID": "", "SLURM_JOB_NODELIST": "n1"},
        {"PATH": "/usr/bin"},
    ],
)
def test_not_in_slurm_allocation(environ: dict) -> None:
    assert not in_slurm_allocation(environ)
    assert hosts_from_slurm(environ) is None


@pytest.mark.parametrize(
    "environ, message",
    [
        ({"SLURM_JOB_ID": "7", "SLURM_JOB_NODELIST": "n[1-3]", "SLURM_TASKS_PER_NODE": "2(x2)"},
         "SLURM_TASKS_PER_NODE: 2 task counts for the 3 nodes of SLURM_JOB_NODELIST (got '2(x2)')"),
        ({"SLURM_JOB_ID": "7", "SLURM_NODELIST": "n[1-2]", "SLURM_TASKS_PER_NODE": "1,1,1"},
         "SLURM_TASKS_PER_NODE: 3 task counts for the 2 nodes of SLURM_NODELIST (got '1,1,1')"),
        ({"SLURM_JOB_ID": "7", "SLURM_JOB_NODELIST": "n[2-1]"},
         "SLURM_JOB_NODELIST: reversed range '2-1' (got 'n[2-1]')"),
        ({"SLURM_JOB_ID": "7", "SLURM_JOB_NODELIST": "n1", "SLURM_TASKS_PER_NODE": "two"},
         "SLURM_TASKS_PER_NODE: bad task count 'two'; expected N or N(xM) (got 'two')"),
        ({"SLURM_JOB_ID": "7", "SLURM_JOB_NODELIST": "n1", "SLURM_NTASKS_PER_NODE": "1,2"},
         "SLURM_NTASKS_PER_NODE: expected one task count for every node (got '1,2')"),
        ({"SLURM_JOB_ID": "7", "SLURM_JOB_NODELIST": "n[1-2],n1"},
         "SLURM_JOB_NODELIST: node 'n1' listed twice (got 'n[1-2],n1')"),
    ],
)
def test_bad_slurm_environment(environ: dict, message: str) -> None:
    with pytest.raises(HostfileError) as info:
        hosts_from_slurm(environ)
    assert str(info.value) == message


def test_pbs_nodefile_counts_repeated_lines(tmp_path: Path) -> None:
    nodefile = tmp_path / "nodes"
    nodefile.write_text("n2\nn2\nn1\nn2\n\nn3\nN1\n")
    hosts = hosts_from_pbs({"PBS_NODEFILE": str(nodefile)})
    assert hosts == (Host("n2", 3), Host("n1", 2), Host("n3", 1))


def test_not_in_pbs_job() -> None:
    assert hosts_from_pbs({}) is None
    assert hosts_from_pbs({"PBS_NODEFILE": ""}) is None


def test_pbs_nodefile_problems(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(HostfileError) as info:
        hosts_from_pbs({"PBS_NODEFILE": str(missing)})
    assert str(info.value) == (
        f"{missing}: PBS_NODEFILE: cannot read PBS node file: No such file or directory")

    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(HostfileError, match="lists no hosts"):
        hosts_from_pbs({"PBS_NODEFILE": str(empty)})

    bad = tmp_path / "bad"
    bad.write_text("n1\nn 2\n")
    with pytest.raises(HostfileError) as info:
        hosts_from_pbs({"PBS_NODEFILE": str(bad)})
    assert str(info.value).startswith(f"{bad}:2: invalid host name")


@pytest.mark.parametrize("environ, message", [
    ({"SLURM_JOB_ID": "1", "SLURM_JOB_NODELIST": "n1", "SLURM_TASKS_PER_NODE": "2(x1000000000)"},
     "1000000000 nodes is more than hvdjob's limit of 65536"),
    ({"SLURM_JOB_ID": "1", "SLURM_JOB_NODELIST": "n1", "SLURM_TASKS_PER_NODE": "100000"},
     "100000 tasks on one node is more than hvdjob's limit of 4096"),
    ({"SLURM_JOB_ID": "1", "SLURM_JOB_NODELIST": "n1", "SLURM_TASKS_PER_NODE": "1" * 5000},
     "has more than 12 digits"),
    ({"SLURM_JOB_ID": "1", "SLURM_JOB_NODELIST": "n[1-" + "9" * 5000 + "]"}, "has more than 12 digits"),
    ({"SLURM_JOB_ID": "1", "SLURM_JOB_NODELIST": "n[1-9999999]", "SLURM_NTASKS_PER_NODE": "1"},
     "more than 65536 hosts"),
    ({"SLURM_JOB_ID": "1", "SLURM_JOB_NODELIST": "n" + ",n" * 70000}, "more than 65536 hosts"),
])
def test_allocation_sizes_are_bounded_before_expanding(environ: dict, message: str) -> None:
    with pytest.raises(HostfileError) as info:
        hosts_from_slurm(environ)
    assert message in str(info.value)
    assert len(str(info.value)) < 400  # the variable is not printed whole


def test_pbs_nodefile_slots_are_bounded(tmp_path: Path) -> None:
    path = tmp_path / "nodes"
    path.write_text("n1\n" * 4097)
    with pytest.raises(HostfileError, match=r"nodes:4097: PBS_NODEFILE: 4097 slots for 'n1' is more than"):
        hosts_from_pbs({"PBS_NODEFILE": str(path)})
