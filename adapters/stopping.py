"""Graceful stop: a signal only raises a flag; ranks act on it together at a step boundary.

Slurm sends the spec's ``slurm.signal`` (USR2 by default; the launcher passes its name in
``HVDJOB_STOP_SIGNAL``) before preemption or the time limit, and Ctrl-C on the launcher turns into
SIGTERM. Other signals keep their handlers (NCCL and MPI stacks may use USR1). Stopping inside a collective would hang the other ranks, so the handler just
records the request and the training loop asks all ranks (an allreduce-max of the flag) whether
anyone wants to stop.
"""
from __future__ import annotations

import os
import signal
import threading
from typing import Iterable, Optional

from hvdrun_cli.spec.signals import stop_signal

STOP_SIGNALS = tuple(dict.fromkeys((stop_signal(os.environ), signal.SIGTERM)))


class StopFlag:
    """Set by the stop signal or SIGTERM; read once per step by the training loop."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal_name: Optional[str] = None

    def install(self, signals: Iterable[signal.Signals] = STOP_SIGNALS) -> "StopFlag":
        """Route the stop signals to this flag (main thread only, as Python requires)."""
        for sig in signals:
            signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: object) -> None:
        self.signal_name = signal.Signals(signum).name
        self._event.set()

    def request(self, reason: str = "request") -> None:
        """Ask to stop without a signal (used by tests and embedding code)."""
        self.signal_name = reason
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()


# Ranks agree on a stop with one small allreduce; doing it every step costs ~20% of a small model's
# step time on CPU, so they agree every STOP_CHECK_EVERY steps (and at the last one). A signal is
# honoured within that many steps, well inside Slurm's warning time.
STOP_CHECK_EVERY = 10


def stop_check_due(step: int, last_step: int) -> bool:
    """Whether ranks agree on a stop after ``step``; the same answer on every rank, so no one waits."""
    return step % STOP_CHECK_EVERY == 0 or step >= last_step
