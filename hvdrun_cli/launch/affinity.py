"""Apply a rank's CPU binding in the rank supervisor, before it starts the rank (which inherits it).

The plan says either exactly which CPUs a rank gets (``HVDJOB_CPUS``, computed on the launching
machine for its own ranks) or only the policy (``HVDJOB_BINDING``), which the supervisor resolves
with :func:`placement.place` from the facts of the host it runs on (other hosts of an mpirun or
srun job). Either way the rank's math threads are sized to its block unless the user set them.
"""
from __future__ import annotations

import os
from typing import Dict, Mapping, Optional

from hvdrun_cli.launch import placement

CPUS_ENV = "HVDJOB_CPUS"
BINDING_ENV = "HVDJOB_BINDING"
THREADS_ENV = "HVDJOB_THREADS_PER_RANK"
GPUS_PER_RANK_ENV = "HVDJOB_GPUS_PER_RANK"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", THREADS_ENV)
# Where each launcher puts the local rank and the number of ranks on this host.
LOCAL_RANK = ("HOROVOD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID")
LOCAL_SIZE = ("HOROVOD_LOCAL_SIZE", "OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS")


def _first_int(environ: Mapping[str, str], names: tuple) -> Optional[int]:
    for name in names:
        value = environ.get(name, "")
        if value.isdigit():
            return int(value)
    return None


def resolve_cpus(environ: Mapping[str, str]) -> Optional[tuple]:
    """The CPUs this rank is to run on, or None for no binding."""
    explicit = environ.get(CPUS_ENV)
    if explicit:
        return placement.parse_cpulist(explicit)
    mode = environ.get(BINDING_ENV, "none")
    local_rank = _first_int(environ, LOCAL_RANK)
    local_size = _first_int(environ, LOCAL_SIZE)
    if mode in ("none", "") or mode not in placement.BINDING_MODES or local_rank is None or not local_size:
        return None
    threads = _first_int(environ, (THREADS_ENV,))
    gpus = _first_int(environ, (GPUS_PER_RANK_ENV,)) or 0
    host = placement.probe_host_cpus(environ)
    placed = placement.place(host, local_size, mode, threads, gpus)
    if local_rank >= len(placed.bindings):
        return None
    return placed.bindings[local_rank].cpus or None


def bind_rank(environ: Mapping[str, str]) -> Dict[str, str]:
    """Bind this process to the rank's CPUs; returns the thread variables to add for the rank."""
    try:
        cpus = resolve_cpus(environ)
    except (OSError, ValueError):
        return {}
    if not cpus:
        return {}
    try:
        os.sched_setaffinity(0, cpus)
    except (AttributeError, OSError, ValueError):
        return {}  # not Linux, or CPUs outside our cgroup: run unbound rather than fail the rank
    return {name: str(len(cpus)) for name in THREAD_VARIABLES if name not in environ}
