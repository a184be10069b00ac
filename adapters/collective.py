"""Decisions taken on rank 0 and shared with every rank.

Some checks can only run on rank 0 (its checkpoint directory may not exist on other hosts). If
rank 0 failed alone, the others would wait forever in the next collective; instead every rank
learns the outcome and stops together, with the message printed once, by rank 0.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, TypeVar

from hvdrun_cli.errors import Problem, UserInputError

from .base import RankContext

T = TypeVar("T")
BroadcastObject = Callable[[Any, int], Any]


def root_decides(ctx: RankContext, broadcast_object: BroadcastObject, fn: Callable[[], T]) -> Optional[T]:
    """Run ``fn`` on rank 0 and return its (small, picklable) result on every rank.

    A :class:`UserInputError` on rank 0 is re-raised there (the worker prints it and exits 2);
    the other ranks exit 2 quietly so the message is not repeated once per rank.
    """
    result: Optional[T] = None
    error: Optional[UserInputError] = None
    if ctx.is_root:
        try:
            result = fn()
        except UserInputError as exc:
            error = exc
    failed, result = broadcast_object((error is not None, result), 0)
    if failed:
        if error is not None:
            raise error
        raise SystemExit(2)
    return result


def check_reduction(reduction: str, mpi_enabled: bool) -> None:
    """Horovod implements Adasum only over MPI; with Gloo it fails at the first step, so say so up front.

    Every rank reaches the same verdict from the same inputs, so no rank is left waiting.
    """
    if reduction == "adasum" and not mpi_enabled:
        raise UserInputError(Problem("adasum needs Horovod's MPI controller (launcher: mpi or srun); this job "
                                     "runs over Gloo", key="horovod.reduction", got=reduction))
