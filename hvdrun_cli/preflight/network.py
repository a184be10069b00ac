"""Launcher side of the network test: one rank per host, started the way the job's ranks will be.

With ``mpirun`` and ``mpi4py`` it runs :mod:`hvdrun_cli.preflight.ring_mpi` (allreduce plus latency
and bandwidth per link of the ring); without MPI it runs :mod:`hvdrun_cli.preflight.ring_gloo`
through ``horovodrun --gloo`` over ssh (an allreduce: Horovod has no point-to-point messages).
Either way a failure here is the failure the job would hit: a blocked port, an interface that does
not route, a host that cannot reach the launching machine.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from hvdrun_cli.hosts import Host, format_host_list
from hvdrun_cli.launch.planner import FORWARDED_ENV
from hvdrun_cli.launch.tools import Tools
from hvdrun_cli.preflight.model import LinkResult, NetworkResult

RING_MPI = "hvdrun_cli.preflight.ring_mpi"
RING_GLOO = "hvdrun_cli.preflight.ring_gloo"
TEST_TIMEOUT_S = 180.0
TAIL_LINES = 6
# absl/TensorFlow start-up lines ("I0000 00:00:... port.cc:153] oneDNN ...") that say nothing about a failure.
NOISE = re.compile(r"^([IWE]\d{4} \d\d:\d\d:|WARNING: All log messages before absl::InitializeLog)")


def choose_method(tools: Tools, host_has_mpi4py: bool, host_has_horovod: bool) -> Optional[str]:
    """``"mpi"`` when mpirun and mpi4py are there, else ``"gloo"`` through horovodrun, else None."""
    if tools.mpirun and host_has_mpi4py:
        return "mpi"
    if tools.horovodrun and host_has_horovod:
        return "gloo"
    return None


def mpi_argv(tools: Tools, hosts: Sequence[str], mib: float, nics: Sequence[str], environ: Mapping[str, str]) -> List[str]:
    """mpirun with one rank per host and the transport settings hvdjob's mpi launcher uses."""
    assert tools.mpirun
    one_each = format_host_list(Host(name, 1) for name in hosts)
    forwarded = [name for name in FORWARDED_ENV if name in environ]
    argv = [tools.mpirun]
    if tools.mpi_implementation in (None, "openmpi"):
        if tools.is_root:
            argv.append("--allow-run-as-root")
        argv += ["-np", str(len(hosts)), "-H", one_each, "--bind-to", "none", "--map-by", "slot"]
        argv += ["-mca", "pml", "ob1", "-mca", "btl", "self,vader,tcp", "-mca", "btl_vader_single_copy_mechanism", "none"]
        # Ranks waiting for their link's turn must not spin on the cores the measured pair needs.
        argv += ["-mca", "mpi_yield_when_idle", "1"]
        if nics:
            argv += ["-mca", "btl_tcp_if_include", ",".join(nics), "-mca", "oob_tcp_if_include", ",".join(nics)]
        for name in forwarded:
            argv += ["-x", name]
    else:
        argv += ["-np", str(len(hosts)), "-hosts", ",".join(hosts)]
        if forwarded:
            argv += ["-genvlist", ",".join(forwarded)]
    return argv + [tools.python, "-m", RING_MPI, "--mib", f"{mib:g}"]


def gloo_argv(tools: Tools, hosts: Sequence[str], mib: float, nics: Sequence[str]) -> List[str]:
    assert tools.horovodrun
    argv = [tools.horovodrun, "--gloo", "-np", str(len(hosts)), "-H", format_host_list(Host(n, 1) for n in hosts)]
    if nics:
        argv += ["--network-interfaces", ",".join(nics)]
    return argv + [tools.python, "-m", RING_GLOO, "--mib", f"{mib:g}"]


def parse_result(stdout: str) -> Optional[Dict[str, object]]:
    """The JSON line rank 0 printed; launchers may prefix it (horovodrun: ``[0]<stdout>:``)."""
    for line in reversed(stdout.splitlines()):
        start = line.find('{"hostnames"')
        if start >= 0:
            try:
                return json.loads(line[start:])
            except ValueError:
                return None
    return None


def _tail(text: str) -> str:
    """The last meaningful lines of a failed test, without TensorFlow's start-up log noise."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not NOISE.match(line.strip())]
    return " | ".join(lines[-TAIL_LINES:]) or "no output"


def _links(data: Mapping[str, object], hosts: Sequence[str]) -> Tuple[LinkResult, ...]:
    """Links by host name: rank i ran on hosts[i] (one slot per host, mapped in order)."""
    links = []
    for link in data.get("links", []) or []:  # type: ignore[union-attr]
        src, dst = int(link["from_rank"]), int(link["to_rank"])
        links.append(LinkResult(hosts[src], hosts[dst], round(float(link["latency_us"]), 1),
                                round(float(link["bandwidth_mib_s"]), 1)))
    return tuple(links)


def run_network_test(
    tools: Tools,
    method: str,
    hosts: Sequence[str],
    mib: float = 16.0,
    nics: Sequence[str] = (),
    timeout_s: float = TEST_TIMEOUT_S,
    environ: Optional[Mapping[str, str]] = None,
) -> NetworkResult:
    """Run the test across ``hosts`` (one rank each, rank i on hosts[i]) and read rank 0's answer."""
    env = dict(os.environ if environ is None else environ)
    if method == "mpi":
        argv, label = mpi_argv(tools, hosts, mib, nics, env), "mpi4py ring"
    else:
        argv, label = gloo_argv(tools, hosts, mib, nics), "horovod gloo allreduce"
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env,
                              timeout=timeout_s, check=False, start_new_session=True)
    except subprocess.TimeoutExpired:
        return NetworkResult(label, False, mib, error=f"no result within {timeout_s:g} s", argv=tuple(argv))
    data = parse_result(proc.stdout)
    if proc.returncode != 0 or data is None:
        what = f"exited with code {proc.returncode}" if proc.returncode else "printed no result"
        tail = _tail(proc.stdout + "\n" + proc.stderr)
        return NetworkResult(label, False, mib, error=f"{os.path.basename(argv[0])} {what}: {tail}", argv=tuple(argv))
    allreduce = dict(data["allreduce"])  # type: ignore[arg-type]
    seconds = float(allreduce["seconds"])
    ok = bool(allreduce["ok"])
    return NetworkResult(
        method=label,
        ok=ok,
        allreduce_mib=mib,
        allreduce_seconds=round(seconds, 6),
        allreduce_bandwidth_mib_s=round(mib / seconds, 1) if seconds > 0 else None,
        links=_links(data, hosts),
        error=None if ok else "the allreduce returned a wrong sum",
        argv=tuple(argv),
    )
