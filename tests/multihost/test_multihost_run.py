"""``hvdjob run`` across namespace hosts over ssh: mpirun and horovodrun --gloo, as on a real cluster.

hvdjob runs here (the root namespace); ranks run inside the hosts hvdhost1/hvdhost2, each with its
own hostname and address. Every run checks where each rank landed (host, local rank, cross rank)
against the hostfile and that a DistributedOptimizer step left identical parameters everywhere.
"""
from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import pytest

from tests.hvdjob_process import Finished, processes_of_run, read_json, run_hvdjob, write_job
from tests.multihost.hosts_fixture import HostCluster

pytestmark = pytest.mark.multihost
SCRIPT = Path(__file__).parent / "scripts" / "where_torch.py"
RESULT = re.compile(
    r"^\[(?P<prefix>\d+)\] rank=(?P<rank>\d+) size=(?P<size>\d+) local_rank=(?P<local_rank>\d+) "
    r"local_size=(?P<local_size>\d+) cross_rank=(?P<cross_rank>\d+) cross_size=(?P<cross_size>\d+) "
    r"host=(?P<host>\S+) sum=(?P<sum>[0-9.]+) params=(?P<params>[0-9a-f]+)(?: cpus=\S+)?$",
    re.M,
)
RUN_TIMEOUT_S = 300


def _job(tmp_path: Path, launcher: str, resources: str, horovod: str = "") -> Path:
    return write_job(
        tmp_path,
        "job.yaml",
        f"""
        name: multihost
        framework: torch
        script: {SCRIPT}
        launcher: {launcher}
        resources: {resources}
        {horovod}
        """,
    )


def _hostfile(tmp_path: Path, lines: Sequence[str]) -> Path:
    path = tmp_path / "hosts.txt"
    path.write_text("# written by the multi-host tests\n" + "\n".join(lines) + "\n")
    return path


def _ranks(finished: Finished) -> Dict[int, Dict[str, str]]:
    found = {int(m["rank"]): m.groupdict() for m in RESULT.finditer(finished.stdout)}
    for rank, fields in found.items():
        assert int(fields["prefix"]) == rank  # the live prefix names the rank that printed
    return found


def _assert_placed(finished: Finished, hosts: List[Tuple[str, int]]) -> None:
    """Ranks fill each host's slots in order; local/cross ranks follow; parameters agree."""
    expected = []
    for cross_rank, (host, slots) in enumerate(hosts):
        for local_rank in range(slots):
            expected.append((host, local_rank, slots, cross_rank))
    ranks = _ranks(finished)
    assert sorted(ranks) == list(range(len(expected))), finished.output
    size = len(expected)
    for rank, (host, local_rank, local_size, cross_rank) in enumerate(expected):
        got = ranks[rank]
        assert got["host"] == host, f"rank {rank} ran on {got['host']}, expected {host}"
        assert (int(got["local_rank"]), int(got["local_size"])) == (local_rank, local_size)
        assert (int(got["cross_rank"]), int(got["cross_size"])) == (cross_rank, len(hosts))
        assert int(got["size"]) == size
        assert float(got["sum"]) == size * (size + 1) / 2
    assert len({r["params"] for r in ranks.values()}) == 1, "parameters differ between ranks after one step"


def _assert_clean_run(finished: Finished, np: int) -> dict:
    assert finished.returncode == 0, finished.output
    run_dir = finished.run_dir()
    for rank in range(np):  # each rank's own log, kept on the launching machine
        log = run_dir / f"rank.{rank}.log"
        assert log.is_file(), f"no log for rank {rank} in {run_dir}"
        assert f"rank={rank} " in log.read_text()
    assert processes_of_run(run_dir.name) == []
    return read_json(run_dir / "plan.json")


@pytest.mark.parametrize(
    "launcher, lines, plan_launcher",
    [
        ("mpi", ["hvdhost1 slots=2", "hvdhost2 slots=2"], "mpi"),
        ("gloo", ["hvdhost1:2", "hvdhost2:2"], "gloo"),
    ],
    ids=["mpirun-slots-hostfile", "horovodrun-colon-hostfile"],
)
def test_four_ranks_on_two_hosts(
    ns_hosts: HostCluster, tmp_path: Path, launcher: str, lines: List[str], plan_launcher: str
) -> None:
    hostfile = _hostfile(tmp_path, lines)
    finished = run_hvdjob("run", str(_job(tmp_path, launcher, f"{{hostfile: {hostfile}}}")), cwd=tmp_path,
                          timeout=RUN_TIMEOUT_S)
    plan = _assert_clean_run(finished, np=4)
    _assert_placed(finished, [("hvdhost1", 2), ("hvdhost2", 2)])
    assert plan["launcher"] == plan_launcher
    assert [(s["hostname"], s["local_rank"], s["cross_rank"]) for s in plan["layout"]] == [
        ("hvdhost1", 0, 0), ("hvdhost1", 1, 0), ("hvdhost2", 0, 1), ("hvdhost2", 1, 1)]
    assert "hvdhost1:2,hvdhost2:2" in plan["processes"][0]["argv"]


def test_bare_hostfile_puts_one_rank_on_each_host_and_auto_picks_mpirun(ns_hosts: HostCluster, tmp_path: Path) -> None:
    hostfile = _hostfile(tmp_path, ["hvdhost1", "hvdhost2"])
    finished = run_hvdjob("run", str(_job(tmp_path, "auto", f"{{hostfile: {hostfile}}}")), cwd=tmp_path,
                          timeout=RUN_TIMEOUT_S)
    plan = _assert_clean_run(finished, np=2)
    _assert_placed(finished, [("hvdhost1", 1), ("hvdhost2", 1)])
    assert plan["launcher"] == "mpi"


@pytest.mark.parametrize("launcher", ["mpi", "gloo"])
def test_network_interfaces_are_passed_to_the_launcher_and_the_job_runs(
    ns_hosts: HostCluster, tmp_path: Path, launcher: str
) -> None:
    job = _job(tmp_path, launcher, "{hosts: [hvdhost1:2, hvdhost2:2]}", f"horovod: {{network_interfaces: [{ns_hosts.nic}]}}")
    finished = run_hvdjob("run", str(job), cwd=tmp_path, timeout=RUN_TIMEOUT_S)
    plan = _assert_clean_run(finished, np=4)
    _assert_placed(finished, [("hvdhost1", 2), ("hvdhost2", 2)])
    argv = plan["processes"][0]["argv"]
    if launcher == "mpi":
        for flag in ("btl_tcp_if_include", "oob_tcp_if_include"):
            assert argv[argv.index(flag) + 1] == ns_hosts.nic
    else:
        assert argv[argv.index("--network-interfaces") + 1] == ns_hosts.nic
    assert plan["env"]["HOROVOD_GLOO_IFACE"] == ns_hosts.nic


@pytest.mark.parametrize("launcher", ["mpi", "gloo"])
def test_a_down_host_is_named_quickly_and_no_rank_starts(ns_hosts: HostCluster, tmp_path: Path, launcher: str) -> None:
    job = _job(tmp_path, launcher, f"{{hosts: [hvdhost1:2, {ns_hosts.down_host}:2]}}")
    started = time.monotonic()
    finished = run_hvdjob("run", str(job), cwd=tmp_path, timeout=120)
    elapsed = time.monotonic() - started
    assert finished.returncode == 1, finished.output
    assert f"cannot start ranks on host {ns_hosts.down_host} (" in finished.stderr
    assert "hvdhost1 (" not in finished.stderr  # the reachable host is not blamed
    assert elapsed < 15, f"took {elapsed:.1f} s to report the down host"
    assert "started (pid" not in finished.output  # no rank started anywhere, hvdhost1 included
    assert "Traceback" not in finished.output
    assert not (tmp_path / "runs").exists()  # refused before the run directory was created
