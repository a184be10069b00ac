"""What every rank-side module shares: where a rank sits, what the launcher told it, the stop outcome.

The launcher<->rank contract itself (environment names, exit codes, files) is
:mod:`hvdrun_cli.contract`; the framework interface is :mod:`.backend`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, Mapping

from hvdrun_cli.contract import ENV_ATTEMPT, ENV_PARAM_DUMP, ENV_RUN_DIR  # noqa: F401  (ENV_PARAM_DUMP: re-exported)
from hvdrun_cli.spec.model import JobSpec, TrainSpec


@dataclass(frozen=True)
class RankContext:
    """Where this rank sits in the job; filled from Horovod after ``hvd.init()``."""

    rank: int
    size: int
    local_rank: int
    local_size: int
    run_dir: str
    attempt: int = 0

    @property
    def is_root(self) -> bool:
        """Rank 0 alone writes checkpoints, metrics and the summary."""
        return self.rank == 0


@dataclass(frozen=True)
class LaunchInfo:
    """What the worker knows before Horovod starts: launcher variables and its own choices."""

    run_dir: str
    attempt: int = 0
    threads: int = 1
    process_start_unix_time: float = 0.0

    @staticmethod
    def from_env(environ: Mapping[str, str], threads: int, process_start_unix_time: float) -> "LaunchInfo":
        try:
            attempt = int(environ.get(ENV_ATTEMPT, "0") or 0)
        except ValueError:
            attempt = 0
        run_dir = environ.get(ENV_RUN_DIR) or os.getcwd()
        return LaunchInfo(os.path.abspath(run_dir), attempt, threads, process_start_unix_time)


def train_of(spec: JobSpec) -> TrainSpec:
    """The managed-training settings, defaults when the spec has no ``train`` section."""
    return spec.train if spec.train is not None else TrainSpec()


class StopRequested(Exception):
    """All ranks agreed to stop (a signal arrived) and rank 0 saved a checkpoint."""

    def __init__(self, summary: Dict[str, Any]):
        super().__init__("stopped on request; checkpoint saved")
        self.summary = summary
