"""What a rank can learn about itself before any framework is imported.

Thread counts must be fixed before torch/TensorFlow start their thread pools, which happens before
``hvd.init()`` can tell us the local size, so we read the launcher's own variables (Horovod's
Gloo runner, Open MPI, Slurm) instead.
"""
from __future__ import annotations

import os
import re
import time
from typing import Mapping, MutableMapping, Optional

from hvdrun_cli.contract import ENV_THREADS_PER_RANK, LOCAL_SIZE_VARIABLES, RANK_VARIABLES

# Variables other launchers export; first match wins.
_LOCAL_SIZE_VARS = LOCAL_SIZE_VARIABLES
_RANK_VARS = RANK_VARIABLES

# Thread-pool sizes read by OpenMP/MKL (torch, numpy) and by TensorFlow's runtime.
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS")


def _int(value: Optional[str]) -> Optional[int]:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def env_rank(env: Mapping[str, str]) -> int:
    """Global rank from the launcher's variables (0 when unknown), for pre-init logging."""
    for name in _RANK_VARS:
        value = _int(env.get(name))
        if value is not None:
            return value
    return 0


def slurm_tasks_on_node(tasks_per_node: str, node_id: int) -> Optional[int]:
    """Expand Slurm's compressed ``2(x3),1`` form and pick this node's task count."""
    counts = []
    for part in tasks_per_node.split(","):
        match = re.fullmatch(r"\s*(\d+)(?:\(x(\d+)\))?\s*", part)
        if not match:
            return None
        counts.extend([int(match.group(1))] * int(match.group(2) or 1))
    return counts[node_id] if 0 <= node_id < len(counts) else None


def env_local_size(env: Mapping[str, str]) -> int:
    """Ranks sharing this host (1 when no launcher variable says otherwise)."""
    for name in _LOCAL_SIZE_VARS:
        value = _int(env.get(name))
        if value:
            return value
    tasks = env.get("SLURM_STEP_TASKS_PER_NODE") or env.get("SLURM_TASKS_PER_NODE")
    if tasks:
        value = slurm_tasks_on_node(tasks, _int(env.get("SLURM_NODEID")) or 0)
        if value:
            return value
    return 1


def available_cores() -> int:
    """Cores this process may run on (its affinity mask, which Slurm and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def threads_per_rank(configured: Optional[int], env: Mapping[str, str], cores: Optional[int] = None) -> int:
    """Threads each rank should use: the spec's value, else the launcher's choice
    (``HVDJOB_THREADS_PER_RANK``) or an explicit ``OMP_NUM_THREADS``, else a fair share.

    Oversubscribing (every rank using every core) makes CPU training several times slower, so the
    default splits the cores among the ranks on this host.
    """
    if configured:
        return max(1, int(configured))
    explicit = _int(env.get(ENV_THREADS_PER_RANK)) or _int(env.get("OMP_NUM_THREADS"))
    if explicit and explicit > 0:
        return explicit
    cores = available_cores() if cores is None else cores
    return max(1, cores // env_local_size(env))


def export_thread_env(threads: int, env: MutableMapping[str, str]) -> None:
    """Make OpenMP, MKL and TensorFlow pools honour ``threads`` in this process (and its children)."""
    for name in THREAD_VARS:
        env[name] = str(threads)
    # Inter-op work (independent ops, Horovod's async collectives) needs at least two threads to
    # avoid needless serialisation; it does not compete much for cores.
    env["TF_NUM_INTEROP_THREADS"] = str(max(2, threads))


def process_start_unix_time() -> float:
    """When this process was started (from /proc), falling back to now.

    Measured from the kernel's record so the summary shows interpreter and import start-up cost too.
    """
    try:
        with open("/proc/self/stat", "rb") as f:
            stat = f.read().decode()
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        now = time.time()
        # Field 22 (starttime, clock ticks since boot) counted after the ")" of the command name;
        # /proc/uptime uses the same clock with 10 ms resolution (/proc/stat's btime only whole seconds).
        started_after_boot = int(stat.rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
        return now - max(0.0, uptime - started_after_boot)
    except (OSError, ValueError, IndexError):
        return time.time()
