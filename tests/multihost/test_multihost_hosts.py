"""The namespace hosts behave like separate machines: own name, own address, own sshd, fenced network."""
from __future__ import annotations

import subprocess

import pytest

from tests.multihost.hosts_fixture import HostCluster

pytestmark = pytest.mark.multihost


def test_every_host_answers_ssh_under_its_own_name_and_address(ns_hosts: HostCluster) -> None:
    for host in ns_hosts.hosts:
        name = ns_hosts.ssh(host.name, "hostname")
        assert name.returncode == 0, name.stderr
        # Open MPI and Horovod group ranks by hostname: each host must have its own.
        assert name.stdout.strip() == host.name
        addresses = ns_hosts.ssh(host.name, "ip", "-4", "-o", "addr", "show", "dev", ns_hosts.nic)
        assert f"inet {host.address}/24" in addresses.stdout, addresses.stderr


def test_hosts_reach_each_other_but_nothing_outside_their_subnet(ns_hosts: HostCluster) -> None:
    first, second = ns_hosts.hosts[:2]
    inside = ns_hosts.ssh(first.name, "ip", "route", "get", second.address)
    assert inside.returncode == 0 and ns_hosts.nic in inside.stdout, inside.stderr
    outside = subprocess.run(
        ["ip", "netns", "exec", first.name, "ip", "route", "get", "192.0.2.1"],
        capture_output=True, text=True, timeout=10, check=False,
    )
    assert outside.returncode != 0
    assert "unreachable" in outside.stderr.lower()


def test_the_down_host_resolves_into_the_subnet_but_refuses_ssh(ns_hosts: HostCluster) -> None:
    done = subprocess.run(["getent", "hosts", ns_hosts.down_host], capture_output=True, text=True, timeout=10, check=False)
    assert done.stdout.split()[0] == ns_hosts.down_address
    ssh = ns_hosts.ssh(ns_hosts.down_host, "true", timeout=30)
    assert ssh.returncode == 255
