"""One launch of the rewritten spec, through the planner and executor ``hvdjob run`` uses.

In-process rather than a ``hvdjob run`` subprocess: the smoke run's wall-clock limit then stops
the job through the executor's own graceful stop (ranks asked to checkpoint and exit, then killed
if they do not), and the run directory gets the same files as ``hvdjob run`` (``spec.json``,
``plan.json``, ``result.json``, ``rank.N.log``, metrics and summary).
"""
from __future__ import annotations

import os
import signal
import threading
import time
from typing import TextIO

from hvdrun_cli.contract import PLAN_FILE
from hvdrun_cli.launch.execute import Execution
from hvdrun_cli.launch.plan import LaunchPlan
from hvdrun_cli.launch.planner import SPEC_JSON
from hvdrun_cli.launch.prepare import plan_here, write_result
from hvdrun_cli.files import write_json_atomic
from hvdrun_cli.launch.rundir import new_run_id
from hvdrun_cli.launch.tools import Tools
from hvdrun_cli.smoke.model import LaunchOutcome
from hvdrun_cli.spec.model import JobSpec

KILL_GRACE_S = 5.0  # after the time limit, ranks get this long to checkpoint before they are killed


class _TimeLimit:
    """Stops an execution gracefully at its deadline, and for good ``KILL_GRACE_S`` later."""

    def __init__(self, execution: Execution, seconds: float, terminal: TextIO):
        self.reached = False
        self._execution = execution
        self._terminal = terminal
        self._timers = [threading.Timer(seconds, self._stop), threading.Timer(seconds + KILL_GRACE_S, self._kill)]
        for timer in self._timers:
            timer.daemon = True

    def __enter__(self) -> "_TimeLimit":
        for timer in self._timers:
            timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for timer in self._timers:
            timer.cancel()

    def _stop(self) -> None:
        self.reached = True
        self._terminal.write("hvdjob smoke: time limit reached; stopping the job\n")
        self._terminal.flush()
        self._execution.request_stop(signal.SIGTERM)

    def _kill(self) -> None:
        self._execution.request_stop(signal.SIGTERM)  # a second stop request kills at once


def plan_launch(spec: JobSpec, tools: Tools, run_dir: str) -> LaunchPlan:
    """The plan ``hvdjob run`` would build for this spec."""
    return plan_here(spec, run_dir, new_run_id(), tools=tools)


def run_launch(spec: JobSpec, tools: Tools, run_dir: str, label: str, deadline: float, terminal: TextIO,
               echo: bool = False) -> LaunchOutcome:
    """Run ``spec`` once in ``run_dir``, stopped at ``deadline`` (a ``time.monotonic()`` value)."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return LaunchOutcome(label, run_dir, None, "the time limit was reached before it", timed_out=True)
    plan = plan_launch(spec, tools, run_dir)
    os.makedirs(run_dir, exist_ok=True)
    write_json_atomic(os.path.join(run_dir, SPEC_JSON), spec.to_dict())
    write_json_atomic(os.path.join(run_dir, PLAN_FILE), plan.to_dict())
    execution = Execution(plan, terminal=terminal, quiet=not echo,
                          progress_timeout_s=spec.watchdog.progress_timeout_seconds)
    with _TimeLimit(execution, remaining, terminal) as limit:
        result = execution.run()
    write_result(run_dir, result)
    return LaunchOutcome(label, run_dir, result.exit_code, result.message, result.tail, result.wall_time_s,
                         timed_out=limit.reached, stopped_by_signal=None if limit.reached else result.stopped_by_signal)


