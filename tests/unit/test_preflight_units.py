"""Pure parts of the preflight: cross-host judgments, ssh and mpirun argv, result parsing, rendering.

No ssh, no namespaces: these run in the fast unit layer (they need neither root nor the hosts).
"""
from __future__ import annotations

import shlex

import pytest

from hvdrun_cli.launch.tools import Tools
from hvdrun_cli.preflight import compare
from hvdrun_cli.preflight.model import HostFacts, HostVerdict, Interface, PreflightReport
from hvdrun_cli.preflight.network import choose_method, gloo_argv, mpi_argv, parse_result
from hvdrun_cli.preflight.remote import ssh_argv
from hvdrun_cli.preflight.render import render_report

PACKAGES = {"hvdjob": "0.1.0", "horovod": "0.28.1", "torch": "2.13.0+cpu", "tensorflow": "2.21.0", "mpi4py": None}


def facts(hostname: str, *interfaces: Interface, python: str = "3.11.7", **packages: object) -> HostFacts:
    return HostFacts(hostname, python, "/venv/bin/python", {**PACKAGES, **packages}, tuple(interfaces))


def nic(name: str, address: str, prefixlen: int = 24) -> Interface:
    return Interface(name, address, prefixlen)


def test_same_software_has_no_version_problem() -> None:
    assert compare.version_problems(facts("a"), facts("here"), "this machine") == []


def test_version_differences_name_both_sides() -> None:
    remote = facts("a", python="3.10.12", torch="2.12.0", horovod=None)
    problems = compare.version_problems(remote, facts("here"), "this machine")
    assert "horovod is not installed for /venv/bin/python" in problems
    assert "Python 3.10.12 here, 3.11.7 on this machine" in problems
    assert "torch 2.12.0 here, 2.13.0+cpu on this machine" in problems
    assert not any(p.startswith("horovod not installed here") for p in problems)  # said once, above


def test_a_python_patch_release_is_not_a_mismatch() -> None:
    assert compare.version_problems(facts("a", python="3.11.9"), facts("here"), "this machine") == []


def test_hosts_sharing_a_hostname_are_both_flagged() -> None:
    found = compare.duplicate_hostname_problems({"n1": facts("vm"), "n2": facts("VM"), "n3": facts("n3")})
    assert sorted(found) == ["n1", "n2"]
    assert "as n2 does" in found["n1"][0] and "as n1 does" in found["n2"][0]
    assert "every host needs its own hostname" in found["n1"][0]


def test_common_subnets_are_those_every_host_is_on() -> None:
    hosts = {
        "a": facts("a", nic("eth0", "10.0.0.1"), nic("ib0", "192.168.5.1")),
        "b": facts("b", nic("eth0", "10.0.0.2"), nic("eth1", "172.16.0.2", 16)),
    }
    subnets, problems, notes = compare.subnet_findings(hosts)
    assert [str(s) for s in subnets] == ["10.0.0.0/24"]
    assert problems == {} and notes == []
    assert compare.usable_interfaces(hosts["a"], subnets) == ("eth0",)


def test_no_shared_subnet_is_a_problem_on_every_host() -> None:
    hosts = {"a": facts("a", nic("eth0", "10.0.0.1")), "b": facts("b", nic("eth0", "10.0.1.2"))}
    subnets, problems, _ = compare.subnet_findings(hosts)
    assert subnets == []
    assert problems["a"] == ["no IPv4 subnet is shared by all hosts (interfaces here: eth0 10.0.0.1/24)"]
    assert "eth0 10.0.1.2/24" in problems["b"][0]


def test_one_machine_needs_no_shared_subnet() -> None:
    _, problems, _ = compare.subnet_findings({"localhost": facts("vm"), "vm": facts("vm")})
    assert problems == {}


def test_differently_named_interfaces_on_a_shared_subnet_get_a_note() -> None:
    hosts = {"a": facts("a", nic("eth0", "10.0.0.1")), "b": facts("b", nic("ens5", "10.0.0.2"))}
    _, problems, notes = compare.subnet_findings(hosts)
    assert problems == {}
    assert notes and "eth0 on a" in notes[0] and "ens5 on b" in notes[0]


def test_requested_interfaces_must_exist() -> None:
    host = facts("a", nic("eth0", "10.0.0.1"))
    assert compare.interface_problems(host, ["eth0"]) == []
    assert compare.interface_problems(host, ["ib0"]) == ["no interface 'ib0' with an IPv4 address (have: eth0)"]


def test_ssh_never_prompts_fails_fast_and_quotes_the_remote_command() -> None:
    argv = ssh_argv("node-1", ["/opt/my env/bin/python", "-m", "hvdrun_cli.preflight.probe"], timeout_s=30)
    assert argv[:2] == ["ssh", "-o"]
    assert "BatchMode=yes" in argv and "ConnectTimeout=5" in argv
    assert argv[argv.index("--") + 1] == "node-1"
    assert shlex.split(argv[-1]) == ["/opt/my env/bin/python", "-m", "hvdrun_cli.preflight.probe"]
    assert "ConnectTimeout=2" in ssh_argv("n", ["true"], timeout_s=2.5)


@pytest.mark.parametrize("bad", ["-oProxyCommand=touch /tmp/x", "a b", "", "host;reboot"])
def test_ssh_refuses_host_names_that_are_not_names(bad: str) -> None:
    with pytest.raises(ValueError):
        ssh_argv(bad, ["true"], timeout_s=5)


def _tools(**kw: object) -> Tools:
    base = dict(python="/venv/bin/python", horovodrun="/venv/bin/horovodrun", mpirun="/usr/bin/mpirun",
                mpi_implementation="openmpi", is_root=True)
    base.update(kw)
    return Tools(**base)  # type: ignore[arg-type]


def test_mpi_test_runs_one_rank_per_host_with_the_jobs_transport() -> None:
    argv = mpi_argv(_tools(), ["n1", "n2", "n3"], 4, ["eth1"], {"PATH": "/bin", "HOME": "/root"})
    assert argv[:2] == ["/usr/bin/mpirun", "--allow-run-as-root"]
    assert argv[argv.index("-np") + 1] == "3" and argv[argv.index("-H") + 1] == "n1:1,n2:1,n3:1"
    assert argv[argv.index("btl_tcp_if_include") + 1] == "eth1"
    assert ["-x", "PATH"] == argv[argv.index("-x"):argv.index("-x") + 2] and "HOME" not in argv
    assert argv[-5:] == ["/venv/bin/python", "-m", "hvdrun_cli.preflight.ring_mpi", "--mib", "4"]
    assert "--allow-run-as-root" not in mpi_argv(_tools(is_root=False), ["n1", "n2"], 4, [], {})


def test_gloo_test_goes_through_horovodrun() -> None:
    argv = gloo_argv(_tools(), ["n1", "n2"], 16, ["eth1"])
    assert argv[:6] == ["/venv/bin/horovodrun", "--gloo", "-np", "2", "-H", "n1:1,n2:1"]
    assert argv[argv.index("--network-interfaces") + 1] == "eth1"


def test_method_prefers_mpi_then_gloo() -> None:
    assert choose_method(_tools(), host_has_mpi4py=True, host_has_horovod=True) == "mpi"
    assert choose_method(_tools(), host_has_mpi4py=False, host_has_horovod=True) == "gloo"
    assert choose_method(_tools(mpirun=None, horovodrun=None), True, True) is None


def test_result_line_is_found_behind_a_launcher_prefix() -> None:
    out = 'noise\n[0]<stdout>:{"hostnames": ["a"], "allreduce": {"ok": true, "seconds": 0.5}, "links": []}\n'
    assert parse_result(out) == {"hostnames": ["a"], "allreduce": {"ok": True, "seconds": 0.5}, "links": []}
    assert parse_result("no json here\n") is None


def test_report_text_names_the_failing_host_and_its_problem() -> None:
    report = PreflightReport(
        verdicts=(
            HostVerdict("n1", True, facts=facts("n1", nic("eth0", "10.0.0.1")), usable_interfaces=("eth0",)),
            HostVerdict("n2", False, problems=("unreachable: ssh failed: No route to host",)),
        ),
        common_subnets=("10.0.0.0/24",),
    )
    text = render_report(report)
    assert "[X] n1  hostname n1, Python 3.11.7, horovod 0.28.1" in text
    assert "interfaces for the job: eth0 10.0.0.1/24" in text
    assert "[ ] n2" in text and "problem: unreachable: ssh failed: No route to host" in text
    assert text.endswith("verdict: the job would fail: problems on n2")
    assert report.to_dict()["hosts"][1]["ok"] is False


def test_launching_machine_without_the_hosts_interface_name_gets_a_note() -> None:
    hosts = {"a": facts("a", nic("ib0", "10.1.0.1")), "b": facts("b", nic("ib0", "10.1.0.2"))}
    subnets = compare.common_subnets(list(hosts.values()))
    login = facts("login", nic("eth0", "10.1.0.9"))
    note = compare.launcher_interface_note(login, hosts, subnets)
    assert note is not None and "no interface named ib0" in note and "launcher: mpi" in note
    same_name = facts("login", nic("ib0", "10.1.0.9"))
    assert compare.launcher_interface_note(same_name, hosts, subnets) is None
