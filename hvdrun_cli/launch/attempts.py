"""Restarts: when a rank dies, stop all ranks and launch again, resuming from the latest checkpoint.

Each attempt gets a fresh plan (new rendezvous port, ``HVDJOB_ATTEMPT`` = attempt number) in the
same run directory, so rank logs and metrics continue where the failed attempt stopped. A job stopped
on purpose (Ctrl-C, SIGTERM, Slurm's warning signal) is never restarted here.
"""
from __future__ import annotations

import time
from typing import Callable, Optional, TextIO

from hvdrun_cli.launch.execute import EXIT_PREEMPTED, Execution, JobResult
from hvdrun_cli.launch.plan import LaunchPlan

RESTART_PAUSE_S = 1.0


def should_restart(result: JobResult, attempt: int, max_restarts: int) -> bool:
    if result.ok or result.stopped_by_signal or result.exit_code == EXIT_PREEMPTED:
        return False
    return attempt < max_restarts


def run_attempts(
    plan_for_attempt: Callable[[int], LaunchPlan],
    max_restarts: int,
    terminal: TextIO,
    quiet: bool = False,
    progress_timeout_s: Optional[float] = None,
    on_plan: Optional[Callable[[LaunchPlan], None]] = None,
) -> JobResult:
    attempt = 0
    while True:
        plan = plan_for_attempt(attempt)
        if on_plan:
            on_plan(plan)
        execution = Execution(plan, terminal=terminal, quiet=quiet, progress_timeout_s=progress_timeout_s)
        if attempt:
            execution.router.note(
                f"hvdjob: attempt {attempt + 1} of {max_restarts + 1}: relaunching {plan.np} ranks; "
                "they resume from the latest checkpoint"
            )
        result = execution.run()
        if not should_restart(result, attempt, max_restarts):
            return result
        terminal.write(f"hvdjob: {result.message}\n")
        for line in result.tail:
            terminal.write(f"    {line}\n")
        terminal.flush()
        attempt += 1
        time.sleep(RESTART_PAUSE_S)
