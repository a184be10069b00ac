"""Hosts from a scheduler allocation we are running inside: Slurm or PBS.

Only reads the given environment mapping (and PBS's node file), so callers decide whether that is
``os.environ`` or a recorded one; ``None`` means "not inside such an allocation".
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Set, Tuple

from hvdrun_cli.errors import HostfileError, Problem
from hvdrun_cli.hosts.hostlist import expand_nodelist, parse_tasks_per_node
from hvdrun_cli.hosts.model import Host, host_name_problem
from hvdrun_cli.spec import limits

_NODELIST_VARS = ("SLURM_JOB_NODELIST", "SLURM_NODELIST")


def _nodelist_var(environ: Mapping[str, str]) -> Optional[str]:
    """The variable holding the job's nodelist (SLURM_NODELIST is the older name)."""
    for name in _NODELIST_VARS:
        if environ.get(name, "").strip():
            return name
    return None


def in_slurm_allocation(environ: Mapping[str, str]) -> bool:
    """True inside ``salloc``/``sbatch``/``srun``: a job id and its nodelist are both set."""
    return bool(environ.get("SLURM_JOB_ID", "").strip()) and _nodelist_var(environ) is not None


def _slurm_slots(environ: Mapping[str, str], nodes: int) -> Tuple[List[int], str]:
    """Tasks per node and the variable they came from (1 per node when Slurm gives none)."""
    if environ.get("SLURM_TASKS_PER_NODE", "").strip():
        name = "SLURM_TASKS_PER_NODE"
        return parse_tasks_per_node(environ[name], origin=name), name
    if environ.get("SLURM_NTASKS_PER_NODE", "").strip():
        name = "SLURM_NTASKS_PER_NODE"
        counts = parse_tasks_per_node(environ[name], origin=name)
        if len(counts) != 1:
            raise HostfileError(Problem("expected one task count for every node", key=name,
                                        got=environ[name]))
        return counts * nodes, name
    return [1] * nodes, ""


def hosts_from_slurm(environ: Mapping[str, str]) -> Optional[Tuple[Host, ...]]:
    """The allocation's nodes with their task counts, or None outside a Slurm job."""
    list_var = _nodelist_var(environ)
    if list_var is None or not in_slurm_allocation(environ):
        return None
    names = expand_nodelist(environ[list_var], origin=list_var)
    slots, slots_var = _slurm_slots(environ, len(names))
    if len(slots) != len(names):
        raise HostfileError(Problem(
            f"{len(slots)} task counts for the {len(names)} nodes of {list_var}",
            key=slots_var, got=environ[slots_var]))
    problems: List[Problem] = []
    seen: Set[str] = set()
    for name in names:
        problem = host_name_problem(name)
        if problem:
            problems.append(Problem(problem, key=list_var, got=name))
        elif name.lower() in seen:
            problems.append(Problem(f"node {name!r} listed twice", key=list_var,
                                    got=environ[list_var]))
        seen.add(name.lower())
    if problems:
        raise HostfileError(problems)
    return tuple(Host(name, count) for name, count in zip(names, slots))


def _read_nodefile(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read(limits.MAX_HOSTFILE_BYTES + 1)
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not a UTF-8 text file"
        raise HostfileError(Problem(f"cannot read PBS node file: {reason}", file=path,
                                    key="PBS_NODEFILE")) from None
    if len(text) > limits.MAX_HOSTFILE_BYTES:
        raise HostfileError(Problem(f"has more than {limits.MAX_HOSTFILE_BYTES:,} characters,"
                                    " hvdjob's limit for a node file", file=path, key="PBS_NODEFILE"))
    return text


def hosts_from_pbs(environ: Mapping[str, str]) -> Optional[Tuple[Host, ...]]:
    """Hosts from ``$PBS_NODEFILE`` (one line per slot), or None outside a PBS job.

    A host's slots are the number of lines naming it; hosts keep the order of first appearance.
    """
    path = environ.get("PBS_NODEFILE", "").strip()
    if not path:
        return None
    slots: Dict[str, int] = {}
    spelling: Dict[str, str] = {}  # host names are case-insensitive; keep the first spelling
    problems: List[Problem] = []
    for number, raw in enumerate(_read_nodefile(path).splitlines(), start=1):
        name = raw.strip()
        if not name:
            continue
        if len(problems) >= limits.MAX_PROBLEMS:
            problems.append(Problem(f"more problems after line {number} not shown", file=path))
            break
        problem = host_name_problem(name)
        if problem:
            problems.append(Problem(problem, file=path, line=number, got=name[:80]))
            continue
        folded = spelling.setdefault(name.lower(), name)
        count = slots.get(folded, 0) + 1
        if count > limits.MAX_SLOTS_PER_HOST or len(slots) + (folded not in slots) > limits.MAX_HOSTS:
            what = (limits.too_many(count, limits.MAX_SLOTS_PER_HOST, f"slots for {name!r}")
                    if count > limits.MAX_SLOTS_PER_HOST else limits.too_many(len(slots) + 1, limits.MAX_HOSTS, "hosts"))
            problems.append(Problem(what, file=path, line=number, key="PBS_NODEFILE"))
            break
        slots[folded] = count
    if not slots and not problems:
        problems.append(Problem("PBS node file lists no hosts", file=path, key="PBS_NODEFILE"))
    if problems:
        raise HostfileError(problems)
    return tuple(Host(name, count) for name, count in slots.items())


def slurm_cpus_per_node(environ: Mapping[str, str]) -> Optional[Dict[str, int]]:
    """CPUs the allocation holds on each node (``SLURM_JOB_CPUS_PER_NODE``), or None when Slurm gives
    none or they do not match the nodelist; used to show srun ranks' CPU blocks in a dry run."""
    list_var = _nodelist_var(environ)
    text = environ.get("SLURM_JOB_CPUS_PER_NODE", "").strip()
    if list_var is None or not text:
        return None
    try:
        names = expand_nodelist(environ[list_var], origin=list_var)
        counts = parse_tasks_per_node(text, origin="SLURM_JOB_CPUS_PER_NODE")
    except HostfileError:
        return None
    if len(counts) != len(names):
        return None
    return dict(zip(names, counts))
