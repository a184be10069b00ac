"""One launch of the rewritten spec, through the same runner ``hvdjob run`` uses.

In-process rather than a ``hvdjob run`` subprocess: the smoke run's wall-clock limit then stops
the job through the executor's own graceful stop (ranks asked to checkpoint and exit, then killed
if they do not), and the run directory gets the same files as ``hvdjob run`` (``spec.json``,
``plan.json``, ``result.json``, ``rank.N.log``, metrics and summary).
"""
from __future__ import annotations

import time
from typing import TextIO

from hvdrun_cli.launch.runner import Launch, RunOptions
from hvdrun_cli.launch.tools import Tools
from hvdrun_cli.smoke.model import LaunchOutcome
from hvdrun_cli.spec.model import JobSpec


def run_launch(spec: JobSpec, tools: Tools, run_dir: str, label: str, deadline: float, terminal: TextIO,
               echo: bool = False) -> LaunchOutcome:
    """Run ``spec`` once in ``run_dir``, stopped at ``deadline`` (a ``time.monotonic()`` value).

    No restarts: a smoke run reports the first failure instead of hiding it behind a relaunch.
    """
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return LaunchOutcome(label, run_dir, None, "the time limit was reached before it", timed_out=True)
    launch = Launch(spec, run_dir=run_dir, tools=tools)
    outcome = launch.run(RunOptions(max_restarts=0, time_limit_s=remaining, quiet=not echo, terminal=terminal))
    result = outcome.result
    return LaunchOutcome(label, run_dir, result.exit_code, result.message, result.tail, result.wall_time_s,
                         timed_out=outcome.timed_out,
                         stopped_by_signal=None if outcome.timed_out else result.stopped_by_signal)
