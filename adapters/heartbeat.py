"""Progress marks: every rank tells the launcher's watchdog, every few seconds, that it is training.

Progress lines come from rank 0 only and may be minutes apart (``train.log_interval``); a watchdog
fed by them alone would either fire on a healthy job or wait far too long on a hung one. The marks
are one short line (``hvdjob: at step N``) that hvdjob keeps out of the terminal and the rank logs.
"""
from __future__ import annotations

import time
from typing import Callable

from hvdrun_cli.contract import progress_mark

MARK_EVERY_S = 1.0


class ProgressMarks:
    """Call :meth:`step_done` after every optimizer step; it prints at most one mark per interval."""

    def __init__(self, every_s: float = MARK_EVERY_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._every_s = every_s
        self._clock = clock
        self._last = float("-inf")

    def step_done(self, global_step: int) -> None:
        now = self._clock()
        if now - self._last >= self._every_s:
            self._last = now
            print(progress_mark(global_step), flush=True)
