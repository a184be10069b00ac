"""Check every host of a job before it starts: reachable, same software, shared network, working collective.

All hosts are probed in parallel, each through ssh with a short connect timeout (see ``remote.py``),
by running :mod:`hvdrun_cli.preflight.probe` with the interpreter the ranks will use. The answers
are compared with this machine's (``compare.py``), then one rank per host runs a real collective
(``network.py``). Each host gets a :class:`HostVerdict` naming what would make the job fail there.
"""
from __future__ import annotations

import json
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, TypeVar, Union

from hvdrun_cli.errors import LaunchError
from hvdrun_cli.hosts import Host
from hvdrun_cli.launch.inputs import is_local_host
from hvdrun_cli.launch.tools import Tools, probe_tools
from hvdrun_cli.preflight import compare, probe
from hvdrun_cli.preflight.model import HostFacts, HostVerdict, NetworkResult, PreflightReport
from hvdrun_cli.preflight.network import choose_method, run_network_test
from hvdrun_cli.preflight.remote import COMMAND_NOT_FOUND, run_on_host, unreachable_reason

DEFAULT_TIMEOUT_S = 10.0  # per host, for ssh plus the probe
REACH_TIMEOUT_S = 8.0  # what ``hvdjob run`` spends at most finding out a host is down
PROBE_MODULE = "hvdrun_cli.preflight.probe"
MAX_PARALLEL = 32

HostLike = Union[Host, str]
T = TypeVar("T")


def _names(hosts: Sequence[HostLike]) -> List[str]:
    """Host names in order, each once."""
    seen: Dict[str, None] = {}
    for host in hosts:
        seen.setdefault(host.name if isinstance(host, Host) else str(host), None)
    return list(seen)


def _parallel(func: Callable[[str], T], items: Sequence[str]) -> List[T]:
    """``func`` over every host at once: checking many hosts costs as long as the slowest one."""
    with ThreadPoolExecutor(max_workers=max(1, min(MAX_PARALLEL, len(items)))) as pool:
        return list(pool.map(func, items))


def probe_host(host: str, python: str, timeout_s: float, local: bool) -> HostVerdict:
    """Reach one host and run the probe there with ``python``."""
    outcome = run_on_host(host, [python, "-m", PROBE_MODULE], timeout_s, local)
    seconds = round(outcome.seconds, 3)
    reason = unreachable_reason(outcome, timeout_s, local)
    if reason:
        return HostVerdict(host, reachable=False, local=local, problems=(f"unreachable: {reason}",), seconds=seconds)
    problem = None
    if outcome.returncode == COMMAND_NOT_FOUND:
        problem = f"no Python at {python} (ranks run that interpreter: every host needs it at the same path)"
    elif outcome.returncode != 0:
        problem = f"the probe failed with {python}: {outcome.last_error_line()}"
    else:
        try:
            facts = HostFacts.from_dict(json.loads(outcome.stdout.strip().splitlines()[-1]))
        except (ValueError, KeyError, IndexError) as exc:
            problem = f"the probe printed no report ({type(exc).__name__})"
        else:
            return HostVerdict(host, reachable=True, local=local, facts=facts, seconds=seconds)
    return HostVerdict(host, reachable=True, local=local, problems=(problem,), seconds=seconds)


def _reference(local: HostFacts, facts: Mapping[str, HostFacts]) -> Tuple[Optional[HostFacts], str]:
    """Versions are compared with this machine, or with the first host when Horovod is not here."""
    if local.packages.get("horovod"):
        return local, "this machine"
    for host, host_facts in facts.items():
        if host_facts.packages.get("horovod"):
            return host_facts, host
    return None, ""


def _judge(verdicts: Sequence[HostVerdict], local: HostFacts, nics: Sequence[str]) -> Tuple[List[HostVerdict], List[str], List[str]]:
    """Add cross-host problems to each verdict: (verdicts, common subnets, report notes)."""
    facts = {v.host: v.facts for v in verdicts if v.facts is not None}
    reference, reference_name = _reference(local, facts)
    problems: Dict[str, List[str]] = {v.host: list(v.problems) for v in verdicts}
    for host, host_facts in facts.items():
        if reference is not None and reference is not host_facts:
            problems[host] += compare.version_problems(host_facts, reference, reference_name)
        problems[host] += compare.interface_problems(host_facts, nics)
    for host, found in compare.duplicate_hostname_problems(facts).items():
        problems[host] += found
    subnets, subnet_problems, notes = compare.subnet_findings(facts)
    for host, found in subnet_problems.items():
        problems[host] += found
    if not any(v.local for v in verdicts):
        note = compare.launcher_interface_note(local, facts, subnets)
        if note:
            notes.append(note)
    judged = [
        replace(
            v,
            problems=tuple(problems[v.host]),
            usable_interfaces=compare.usable_interfaces(v.facts, subnets) if v.facts else (),
        )
        for v in verdicts
    ]
    return judged, [str(s) for s in subnets], notes


def _network(
    verdicts: List[HostVerdict], tools: Tools, mib: float, nics: Sequence[str], notes: List[str]
) -> Tuple[List[HostVerdict], Optional[NetworkResult]]:
    hosts = [v.host for v in verdicts]
    distinct = {v.facts.hostname.lower() for v in verdicts if v.facts}
    if not all(v.ok for v in verdicts):
        notes.append("network test skipped: fix the problems above first")
        return verdicts, None
    if len(distinct) < 2:
        notes.append("one machine only: no network test")
        return verdicts, None
    method = choose_method(
        tools,
        host_has_mpi4py=all(v.facts and v.facts.packages.get("mpi4py") for v in verdicts),
        host_has_horovod=all(v.facts and v.facts.packages.get("horovod") for v in verdicts),
    )
    if method is None:
        notes.append("no network test: needs mpirun here and mpi4py on every host, or horovodrun here")
        return verdicts, None
    result = run_network_test(tools, method, hosts, mib=mib, nics=nics)
    by_source = {link.from_host: link for link in result.links}
    judged = []
    for v in verdicts:
        extra = () if result.ok else (f"collective across the hosts failed ({result.method}): {result.error}",)
        judged.append(replace(v, link=by_source.get(v.host), problems=v.problems + extra))
    return judged, result


def preflight(
    hosts: Sequence[HostLike],
    timeout_s: float = DEFAULT_TIMEOUT_S,
    *,
    network_test: bool = True,
    mib: float = 16.0,
    nics: Sequence[str] = (),
    tools: Optional[Tools] = None,
) -> PreflightReport:
    """Probe every host in parallel, compare them, then run one collective across them."""
    started = time.monotonic()
    tools = tools or probe_tools()
    own = socket.gethostname()
    names = _names(hosts)
    verdicts = _parallel(lambda name: probe_host(name, tools.python, timeout_s, is_local_host(name, own)), names)
    local = HostFacts.from_dict(probe.collect())
    judged, subnets, notes = _judge(verdicts, local, nics)
    network = None
    if network_test:
        judged, network = _network(judged, tools, mib, nics, notes)
    return PreflightReport(
        verdicts=tuple(judged),
        common_subnets=tuple(subnets),
        network=network,
        reference=local,
        seconds=time.monotonic() - started,
        notes=tuple(notes),
    )


def check_hosts(hosts: Sequence[HostLike], timeout_s: float = DEFAULT_TIMEOUT_S) -> List[HostVerdict]:
    """Per-host verdicts for a job on ``hosts``, network test included."""
    return list(preflight(hosts, timeout_s).verdicts)


def reachable_or_raise(hosts: Sequence[HostLike], timeout_s: float = REACH_TIMEOUT_S, python: Optional[str] = None) -> None:
    """Raise :class:`LaunchError` naming every remote host that cannot start a rank, within ``timeout_s``.

    For each remote host, in parallel: ssh in (no prompts, short connect timeout) and import hvdjob
    with the interpreter the ranks use. Cheap enough to run before every multi-host launch, and it
    turns "mpirun: ORTE was unable to reliably start one or more daemons" or a horovodrun traceback
    after five ssh attempts into one line naming the host.
    """
    python = python or sys.executable  # the interpreter every rank runs (Tools.python)
    own = socket.gethostname()
    remote = [name for name in _names(hosts) if not is_local_host(name, own)]
    if not remote:
        return
    command = [python, "-c", "import hvdrun_cli"]

    def failure(name: str) -> Optional[str]:
        outcome = run_on_host(name, command, timeout_s, local=False)
        reason = unreachable_reason(outcome, timeout_s, local=False)
        if reason:
            return f"{name} ({reason})"
        if outcome.returncode == COMMAND_NOT_FOUND:
            return f"{name} (no Python at {python}: every host needs the job's environment at the same path)"
        if outcome.returncode != 0:
            return f"{name} (hvdjob is not importable by {python} there: {outcome.last_error_line()})"
        return None

    failed = [f for f in _parallel(failure, remote) if f]
    if failed:
        what = "host" if len(failed) == 1 else "hosts"
        raise LaunchError(f"cannot start ranks on {what} {'; '.join(failed)}. No rank was started.")
