"""Cross-host judgments on probed facts: versions, host names and shared subnets. Pure functions.

Each function returns, per host, the problems (the job would fail) or notes it found, so the
caller can attach them to that host's verdict.
"""
from __future__ import annotations

import ipaddress
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from hvdrun_cli.preflight.model import COMPARED_PACKAGES, HostFacts

Findings = Dict[str, List[str]]  # host -> messages


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def version_problems(facts: HostFacts, reference: HostFacts, reference_name: str) -> List[str]:
    """How ``facts`` differ from the reference machine in what ranks load.

    Python is compared by minor version (extension modules are built per minor version); the
    packages exactly, because Horovod's extension is compiled against one torch/TensorFlow.
    """
    problems: List[str] = []
    if not facts.packages.get("horovod"):
        problems.append(f"horovod is not installed for {facts.executable}")
    if _minor(facts.python) != _minor(reference.python):
        problems.append(f"Python {facts.python} here, {reference.python} on {reference_name}")
    for package in COMPARED_PACKAGES:
        theirs, ours = facts.packages.get(package), reference.packages.get(package)
        if theirs != ours and not (package == "horovod" and not theirs):
            problems.append(
                f"{package} {theirs or 'not installed'} here, {ours or 'not installed'} on {reference_name}"
            )
    return problems


def duplicate_hostname_problems(facts: Mapping[str, HostFacts]) -> Findings:
    """Hosts that call themselves by the same name.

    Open MPI and Horovod group ranks into machines by hostname: two hosts reporting the same one are
    taken for one machine (shared memory between them, local ranks counted across both), and the
    job crashes or hangs at its first collective.
    """
    first: Dict[str, str] = {}
    found: Findings = {}
    for host, host_facts in facts.items():
        name = host_facts.hostname.lower()
        if name in first:
            other = first[name]
            message = (
                f"reports hostname {host_facts.hostname!r}, as {other} does: MPI and Gloo would take them for one "
                "machine; every host needs its own hostname"
            )
            found.setdefault(host, []).append(message)
            found.setdefault(other, []).append(message.replace(f"as {other} does", f"as {host} does"))
        else:
            first[name] = host
    return found


def common_subnets(facts: Sequence[HostFacts]) -> List[ipaddress.IPv4Network]:
    """IPv4 subnets every host has an address in: the networks the job's traffic can use."""
    if not facts:
        return []
    shared = set.intersection(*({i.network for i in f.interfaces} for f in facts))
    return sorted(shared)


def usable_interfaces(facts: HostFacts, subnets: Sequence[ipaddress.IPv4Network]) -> Tuple[str, ...]:
    return tuple(sorted({i.name for i in facts.interfaces if i.network in subnets}))


def subnet_findings(facts: Mapping[str, HostFacts]) -> Tuple[List[ipaddress.IPv4Network], Findings, List[str]]:
    """(shared subnets, per-host problems, notes) for hosts that will talk to each other."""
    subnets = common_subnets(list(facts.values()))
    problems: Findings = {}
    notes: List[str] = []
    distinct = {f.hostname.lower() for f in facts.values()}
    if len(distinct) > 1 and not subnets:
        for host, host_facts in facts.items():
            have = ", ".join(f"{i.name} {i.address}/{i.prefixlen}" for i in host_facts.interfaces) or "none"
            problems[host] = [f"no IPv4 subnet is shared by all hosts (interfaces here: {have})"]
        return subnets, problems, notes
    for subnet in subnets:
        names = {host: sorted({i.name for i in f.interfaces if i.network == subnet}) for host, f in facts.items()}
        if len({tuple(n) for n in names.values()}) > 1:
            where = ", ".join(f"{'/'.join(n)} on {host}" for host, n in names.items())
            notes.append(
                f"subnet {subnet} is on differently named interfaces ({where}): "
                "horovod.network_interfaces must name an interface that exists on every host"
            )
    return subnets, problems, notes


def interface_problems(facts: HostFacts, wanted: Sequence[str]) -> List[str]:
    """Requested interfaces (``horovod.network_interfaces``) missing or without IPv4 on a host."""
    have = {i.name for i in facts.interfaces}
    return [f"no interface {name!r} with an IPv4 address (have: {', '.join(sorted(have)) or 'none'})"
            for name in wanted if name not in have]


def launcher_interface_note(
    local: HostFacts, facts: Mapping[str, HostFacts], subnets: Sequence[ipaddress.IPv4Network]
) -> Optional[str]:
    """A warning when this machine lacks the hosts' shared interface *name*.

    horovodrun serves its Gloo rendezvous on its own address on the interface the hosts share, and
    looks that address up by the interface's name: launched from a machine without an interface of
    that name it stops with ``KeyError: 'eth1'``. Only matters when hvdjob runs off the hosts.
    """
    shared = [set(usable_interfaces(f, subnets)) for f in facts.values()]
    names = set.intersection(*shared) if shared else set()
    missing = sorted(names - {i.name for i in local.interfaces})
    if not missing:
        return None
    return (
        f"this machine has no interface named {', '.join(missing)} (shared by the hosts): the gloo launcher "
        "(horovodrun) looks up its own address by that name and fails; use launcher: mpi, give the launching "
        "machine the same interface name, or run hvdjob on one of the hosts"
    )
