"""Environment every rank receives, derived from the spec.

Horovod reads its tunables from ``HOROVOD_*`` variables in each rank, whichever launcher started it,
so tunables are expressed as environment here once, instead of per-launcher flags.
"""
from __future__ import annotations

from typing import Dict, Optional

from hvdrun_cli.contract import ENV_ATTEMPT, ENV_RUN_DIR, ENV_RUN_ID, ENV_SPEC, ENV_THREADS_PER_RANK
from hvdrun_cli.spec.model import HorovodSpec, JobSpec
from hvdrun_cli.spec.signals import STOP_SIGNAL_ENV

MIB = 1024 * 1024


def horovod_tunables_env(hvd: HorovodSpec) -> Dict[str, str]:
    """``HOROVOD_*`` variables for the tunables the user set (unset ones keep Horovod's defaults)."""
    env: Dict[str, str] = {}
    if hvd.fusion_threshold_mb is not None:
        env["HOROVOD_FUSION_THRESHOLD"] = str(int(hvd.fusion_threshold_mb * MIB))
    if hvd.cycle_time_ms is not None:
        env["HOROVOD_CYCLE_TIME"] = _number(hvd.cycle_time_ms)
    if hvd.cache_capacity is not None:
        env["HOROVOD_CACHE_CAPACITY"] = str(hvd.cache_capacity)
    if hvd.hierarchical_allreduce:
        env["HOROVOD_HIERARCHICAL_ALLREDUCE"] = "1"
    if hvd.timeline:
        env["HOROVOD_TIMELINE"] = hvd.timeline
    if hvd.autotune:
        env["HOROVOD_AUTOTUNE"] = "1"
        if hvd.autotune_log:
            env["HOROVOD_AUTOTUNE_LOG"] = hvd.autotune_log
    if not hvd.stall_check:
        env["HOROVOD_STALL_CHECK_DISABLE"] = "1"
    else:
        env["HOROVOD_STALL_CHECK_TIME_SECONDS"] = str(hvd.stall_check_seconds)
        if hvd.stall_shutdown_seconds:
            env["HOROVOD_STALL_SHUTDOWN_TIME_SECONDS"] = str(hvd.stall_shutdown_seconds)
    if hvd.log_level:
        env["HOROVOD_LOG_LEVEL"] = hvd.log_level.upper()
    if hvd.network_interfaces:
        env["HOROVOD_GLOO_IFACE"] = hvd.network_interfaces[0]
        env["NCCL_SOCKET_IFNAME"] = ",".join(hvd.network_interfaces)
    return env


def threads_env(threads: int) -> Dict[str, str]:
    """Pin math-library thread pools: oversubscribed cores are the usual CPU-training slowdown."""
    value = str(max(1, threads))
    return {"OMP_NUM_THREADS": value, "MKL_NUM_THREADS": value, ENV_THREADS_PER_RANK: value}


def default_threads_per_rank(cores: int, ranks_on_host: int) -> int:
    return max(1, cores // max(1, ranks_on_host))


def rank_env(
    spec: JobSpec,
    *,
    spec_json_path: str,
    run_dir: str,
    run_id: str,
    attempt: int,
    threads: Optional[int],
) -> Dict[str, str]:
    """All variables added for every rank: hvdjob's contract with the rank side, tunables, user env."""
    env: Dict[str, str] = {
        ENV_SPEC: spec_json_path,
        ENV_RUN_DIR: run_dir,
        ENV_RUN_ID: run_id,
        ENV_ATTEMPT: str(attempt),
        STOP_SIGNAL_ENV: spec.slurm.signal,  # the ranks stop (checkpoint, exit 75) on this one
        "PYTHONUNBUFFERED": "1",
    }
    if spec.framework == "tensorflow":
        # TF >= 2.16 ships Keras 3, which Horovod does not support; tf-keras is the Keras 2 it needs.
        env["TF_USE_LEGACY_KERAS"] = "1"
        env["TF_CPP_MIN_LOG_LEVEL"] = "1"
    env.update(horovod_tunables_env(spec.horovod))
    if threads is not None:
        env.update(threads_env(threads))
    env.update({k: str(v) for k, v in spec.env.items()})  # the user's word is final
    return env


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
