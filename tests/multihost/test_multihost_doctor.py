"""``hvdjob doctor --hostfile/-H``: per-host verdicts from real ssh, real probes and a real collective."""
from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from hvdrun_cli.launch.tools import probe_tools
from hvdrun_cli.preflight import preflight
from tests.hvdjob_process import run_hvdjob
from tests.multihost.hosts_fixture import HostCluster

pytestmark = pytest.mark.multihost


def test_doctor_passes_on_the_hosts_and_measures_every_link(ns_hosts: HostCluster, tmp_path: Path) -> None:
    hostfile = tmp_path / "hosts.txt"
    hostfile.write_text("".join(f"{name} slots=2\n" for name in ns_hosts.names))
    done = run_hvdjob("doctor", "--hostfile", str(hostfile), "--json", "--mib", "4", cwd=tmp_path, timeout=180)
    assert done.returncode == 0, done.output
    report = json.loads(done.stdout)
    assert report["ok"] is True
    assert report["common_subnets"] == [f"{ns_hosts.bridge_address.rsplit('.', 1)[0]}.0/24"]
    names = ns_hosts.names
    for index, host in enumerate(report["hosts"]):
        assert host["host"] == names[index] and host["ok"], host
        assert host["facts"]["hostname"] == names[index]  # the probe really ran on that host
        assert host["facts"]["packages"]["horovod"] == report["reference"]["packages"]["horovod"]
        assert host["usable_interfaces"] == [ns_hosts.nic]
        link = host["link"]
        assert (link["from_host"], link["to_host"]) == (names[index], names[(index + 1) % len(names)])
        assert link["bandwidth_mib_s"] > 0 and link["latency_us"] > 0
    network = report["network"]
    assert network["method"] == "mpi4py ring" and network["ok"] is True
    assert network["allreduce_bandwidth_mib_s"] > 0


def test_doctor_fails_fast_and_names_each_host_that_is_down(ns_hosts: HostCluster, tmp_path: Path) -> None:
    hosts = f"hvdhost1:2,{ns_hosts.down_host}:2,{ns_hosts.silent_host}:2"
    started = time.monotonic()
    done = run_hvdjob("doctor", "-H", hosts, "--timeout", "10", cwd=tmp_path, timeout=120)
    elapsed = time.monotonic() - started
    assert done.returncode == 1, done.output
    assert elapsed < 15, f"took {elapsed:.1f} s"
    lines = done.stdout.splitlines()

    def block(host: str) -> str:
        start = next(i for i, line in enumerate(lines) if line.strip().startswith(("[X] " + host, "[ ] " + host)))
        end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith("        ")), len(lines))
        return "\n".join(lines[start:end])

    assert block("hvdhost1").lstrip().startswith("[X]")
    assert "No route to host" in block(ns_hosts.down_host) and block(ns_hosts.down_host).lstrip().startswith("[ ]")
    assert "timed out" in block(ns_hosts.silent_host)  # packets dropped: ssh's ConnectTimeout, not TCP's 2 minutes
    assert f"verdict: the job would fail: problems on {ns_hosts.down_host}, {ns_hosts.silent_host}" in done.stdout
    assert "Traceback" not in done.output


def test_doctor_reports_an_interface_missing_on_the_hosts(ns_hosts: HostCluster, tmp_path: Path) -> None:
    done = run_hvdjob("doctor", "-H", "hvdhost1,hvdhost2", "--network-interface", "eth7", "--json", cwd=tmp_path,
                      timeout=120)
    assert done.returncode == 1, done.output
    report = json.loads(done.stdout)
    for host in report["hosts"]:
        assert any("no interface 'eth7'" in p and ns_hosts.nic in p for p in host["problems"]), host
    assert report["network"] is None  # no collective on hosts already known to fail
    assert "problems on hvdhost1, hvdhost2" in done.stderr


def test_without_mpi_the_collective_runs_through_horovodrun_gloo(ns_hosts: HostCluster) -> None:
    tools = replace(probe_tools(), mpirun=None)  # this machine as if Open MPI were not installed
    report = preflight(["hvdhost1", "hvdhost2"], 10, mib=4, nics=(ns_hosts.nic,), tools=tools)
    assert report.ok, [v.problems for v in report.verdicts]
    assert report.network is not None and report.network.method == "horovod gloo allreduce"
    assert report.network.argv[1] == "--gloo"
    assert report.network.allreduce_bandwidth_mib_s and report.network.allreduce_bandwidth_mib_s > 0
