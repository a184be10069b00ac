"""Where each rank of a host runs: one contiguous block of the host's usable CPUs per local rank.

Pure over :class:`HostCpus` (the usable CPUs and NUMA nodes of one host), so the split is unit-tested
with recorded masks; :func:`probe_host_cpus` reads them from this machine (affinity mask, which the
kernel already narrows to the cgroup cpuset and, inside Slurm, to the allocation's CPUs; NUMA nodes from
``/sys/devices/system/node``). The launcher side uses it for the dry run of local ranks; the rank
supervisor uses the same function on each host (``affinity.py``), so what is shown is what is applied.

Modes (``resources.binding``):

* ``auto``: ``core`` blocks when every rank gets at least one CPU, else no binding (with a warning);
* ``core``: contiguous blocks of ``threads`` CPUs, kept inside one NUMA node where the counts allow;
* ``numa``: each rank bound to all CPUs of one NUMA node (round robin); GPU ranks to their GPU's node;
* ``none``: no binding.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

BINDING_MODES = ("auto", "none", "core", "numa")
BUSY_SHARE = 0.5  # auto: from this share of the usable CPUs busy with other work on, ranks stay unbound
NODE_DIR = "/sys/devices/system/node"


@dataclass(frozen=True)
class HostCpus:
    """The CPUs ranks may use on one host, and how they group into NUMA nodes."""

    cpus: Tuple[int, ...]  # sorted, usable by this job
    numa: Tuple[Tuple[int, ...], ...] = ()  # usable CPUs of each NUMA node with any; () = one node
    gpu_numa: Tuple[Optional[int], ...] = ()  # NUMA node of GPU i (None: unknown)

    def nodes(self) -> Tuple[Tuple[int, ...], ...]:
        return self.numa if len(self.numa) > 1 else (self.cpus,)


@dataclass(frozen=True)
class Binding:
    """The CPUs of one local rank (empty: not bound) and why."""

    local_rank: int
    cpus: Tuple[int, ...]
    reason: str

    @property
    def bound(self) -> bool:
        return bool(self.cpus)


@dataclass(frozen=True)
class HostPlacement:
    bindings: Tuple[Binding, ...]
    threads: int  # threads per rank (the block size when bound)
    warning: Optional[str] = None


def parse_cpulist(text: str) -> Tuple[int, ...]:
    """``0-3,8,10-11`` (the kernel's cpulist format) -> sorted CPU ids."""
    cpus: List[int] = []
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            cpus.extend(range(int(lo), int(hi) + 1))
        else:
            cpus.append(int(part))
    return tuple(sorted(set(cpus)))


def format_cpulist(cpus: Sequence[int]) -> str:
    """Sorted CPU ids -> ``0-3,8`` (compact ranges, for display and the environment)."""
    out: List[str] = []
    ordered = sorted(cpus)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(out)


def place(host: HostCpus, local_size: int, mode: str = "auto", threads: Optional[int] = None,
          gpus_per_rank: int = 0, busy_share: Optional[float] = None) -> HostPlacement:
    """Split ``host``'s CPUs among ``local_size`` ranks according to ``mode``.

    ``busy_share`` (how much of the usable CPUs other work took just before the job, see
    :mod:`.cpu_load`) makes ``auto`` leave ranks unbound from ``BUSY_SHARE`` on: a rank pinned to one
    contended CPU cannot move to the one that frees up, and synchronous training runs at the pace of
    the slowest rank (measured on a shared 2-core box at load 13-19: start-up and training slower bound
    than unbound). ``core`` binds regardless.

    ``threads`` (``horovod.threads_per_rank``) fixes the block size; by default every rank gets an
    equal share (``cpus // local_size``) and left-over CPUs stay unused, so blocks are equal.
    """
    if mode not in BINDING_MODES:
        raise ValueError(f"unknown binding mode {mode!r}")
    ncpu = len(host.cpus)
    share = max(1, ncpu // max(1, local_size))
    size = threads or share
    unbound = lambda why, warn=None: HostPlacement(  # noqa: E731 - a local shorthand
        tuple(Binding(i, (), why) for i in range(local_size)), max(1, min(size, share)), warn)
    if mode == "none":
        return unbound("binding: none (resources.binding)")
    if local_size > ncpu:
        return unbound(
            "not bound: oversubscribed",
            f"{local_size} ranks on {ncpu} usable CPUs: ranks are not bound to CPUs (oversubscribed)",
        )
    if mode == "auto" and busy_share is not None and busy_share >= BUSY_SHARE:
        return unbound(
            "not bound: machine busy",
            f"other work kept {busy_share:.0%} of the {ncpu} usable CPUs busy just before the job: ranks are "
            "not bound (resources.binding: core binds anyway)",
        )
    if mode == "numa" or (gpus_per_rank > 0 and host.gpu_numa):
        return _numa(host, local_size, size, gpus_per_rank, mode)
    if size * local_size > ncpu:
        return unbound(
            "not bound: threads_per_rank x ranks exceeds the usable CPUs",
            f"{local_size} ranks x {size} threads > {ncpu} usable CPUs: ranks are not bound",
        )
    return HostPlacement(_blocks(host, local_size, size), size)


def _blocks(host: HostCpus, local_size: int, size: int) -> Tuple[Binding, ...]:
    """Contiguous blocks of ``size`` CPUs, never straddling a NUMA node when the node sizes allow it."""
    nodes = host.nodes()
    fits = all(len(n) % size == 0 for n in nodes) or len(nodes) == 1
    bindings: List[Binding] = []
    if fits and len(nodes) > 1:
        # Spread ranks over the nodes (rank i to node i*nodes//local_size) so memory bandwidth is shared.
        per_node: Dict[int, int] = {}
        for rank in range(local_size):
            node = rank * len(nodes) // local_size
            k = per_node.get(node, 0)
            if (k + 1) * size > len(nodes[node]):
                break
            per_node[node] = k + 1
            bindings.append(Binding(rank, nodes[node][k * size:(k + 1) * size],
                                    f"{size} CPU(s) of NUMA node {node}"))
        if len(bindings) == local_size:
            return tuple(bindings)
        bindings = []
    flat = host.cpus
    for rank in range(local_size):
        block = flat[rank * size:(rank + 1) * size]
        bindings.append(Binding(rank, block, f"block {rank}: {size} of {len(flat)} usable CPU(s)"))
    return tuple(bindings)


def _numa(host: HostCpus, local_size: int, size: int, gpus_per_rank: int, mode: str) -> HostPlacement:
    """Rank -> a NUMA node (its GPU's node when known, else round robin) -> a block of that node."""
    nodes = host.nodes()
    node_of: List[int] = []
    reasons: List[str] = []
    for rank in range(local_size):
        gpu = rank * gpus_per_rank if gpus_per_rank else None
        known = host.gpu_numa[gpu] if gpu is not None and gpu < len(host.gpu_numa) else None
        if known is not None and known < len(nodes):
            node_of.append(known)
            reasons.append(f"GPU {gpu} is on NUMA node {known}")
        else:
            node = rank % len(nodes) if mode == "numa" else rank * len(nodes) // local_size
            node_of.append(node)
            reasons.append(f"NUMA node {node}")
    bindings: List[Binding] = []
    for rank in range(local_size):
        node = node_of[rank]
        sharing = [r for r in range(local_size) if node_of[r] == node]
        cpus = nodes[node]
        if mode == "numa":
            block = cpus
            why = f"all {len(cpus)} CPU(s) of {reasons[rank]}"
        else:
            per = max(1, len(cpus) // len(sharing))
            k = sharing.index(rank)
            block = cpus[k * per:(k + 1) * per] or cpus
            why = f"{len(block)} CPU(s) of {reasons[rank]}"
        bindings.append(Binding(rank, tuple(block), why))
    threads = min(len(b.cpus) for b in bindings)
    return HostPlacement(tuple(bindings), threads if mode != "numa" else size)


# ---- facts of this machine (impure, small) ----------------------------------------------------


def _read(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError:
        return None


def numa_nodes(usable: Sequence[int], node_dir: str = NODE_DIR) -> Tuple[Tuple[int, ...], ...]:
    """Usable CPUs of each NUMA node that has any, from ``/sys/devices/system/node/node*/cpulist``."""
    try:
        names = sorted((n for n in os.listdir(node_dir) if re.fullmatch(r"node\d+", n)), key=lambda n: int(n[4:]))
    except OSError:
        return ()
    allowed = set(usable)
    nodes = []
    for name in names:
        text = _read(os.path.join(node_dir, name, "cpulist"))
        cpus = tuple(c for c in parse_cpulist(text or "") if c in allowed)
        if cpus:
            nodes.append(cpus)
    return tuple(nodes)


def usable_cpus(environ: Mapping[str, str]) -> Tuple[int, ...]:
    """This process's affinity mask (already narrowed by the cgroup cpuset and Slurm's task plugin)."""
    try:
        return tuple(sorted(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return tuple(range(os.cpu_count() or 1))


def parse_nvidia_topo(text: str) -> Tuple[Optional[int], ...]:
    """NUMA node of each GPU from ``nvidia-smi topo -m`` output (the "NUMA Affinity" column)."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    header = next((line for line in lines if "CPU Affinity" in line), None)
    if header is None:
        return ()
    columns = re.split(r"\t+|\s{2,}", header.strip())
    numa_col = next((i for i, c in enumerate(columns) if c.strip() == "NUMA Affinity"), None)
    result: List[Optional[int]] = []
    for line in lines:
        if line is header:
            continue
        cells = re.split(r"\t+|\s{2,}", line.strip())
        if not re.fullmatch(r"GPU\d+", cells[0]):
            continue
        # Row cells: name, one per device column, then CPU Affinity, NUMA Affinity, GPU NUMA ID.
        value = cells[numa_col + 1] if numa_col is not None and numa_col + 1 < len(cells) else ""
        result.append(int(value) if value.strip().isdigit() else None)
    return tuple(result)


def probe_host_cpus(environ: Mapping[str, str], gpu_topology: Optional[str] = None) -> HostCpus:
    cpus = usable_cpus(environ)
    return HostCpus(cpus=cpus, numa=numa_nodes(cpus),
                    gpu_numa=parse_nvidia_topo(gpu_topology) if gpu_topology else ())
