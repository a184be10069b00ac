"""Restarts: when a rank dies, stop all ranks and launch again, resuming from the latest checkpoint.

Each attempt gets a fresh plan (new rendezvous port, ``HVDJOB_ATTEMPT`` = attempt number) in the
same run directory, so rank logs and metrics continue where the failed attempt stopped. A job stopped
on purpose (Ctrl-C, SIGTERM, Slurm's warning signal) is never restarted, and neither is one whose
ranks rejected their input (exit 2: a bad spec or an unusable checkpoint directory fails the same
way every time). A stop signal that arrives between two attempts ends the job there, and so does a
restart that cannot be planned (a host down, too few slots once a lost host is left out): the last
failure is then the job's outcome, with the reason it was not restarted.
"""
from __future__ import annotations

import dataclasses
import signal
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence, TextIO

from hvdrun_cli.errors import LaunchError
from hvdrun_cli.launch.execute import EXIT_PREEMPTED, Execution, JobResult
from hvdrun_cli.launch.output import LineObserver
from hvdrun_cli.launch.plan import LaunchPlan
from hvdrun_cli.launch.terminal import TerminalOptions

RESTART_PAUSE_S = 1.0  # lets ports and the last writes of the failed attempt settle
EXIT_BAD_INPUT = 2
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)


def should_restart(result: JobResult, attempt: int, max_restarts: int) -> bool:
    if result.ok or result.stopped_by_signal or result.exit_code in (EXIT_PREEMPTED, EXIT_BAD_INPUT):
        return False
    return attempt < max_restarts


class _GapSignals:
    """Between attempts no Execution watches signals: remember a stop request instead of dying."""

    def __init__(self) -> None:
        self.received: Optional[int] = None
        self._previous: Dict[int, object] = {}

    def __enter__(self) -> "_GapSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in _STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.received = signum

    def __exit__(self, *_exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


def run_attempts(
    plan_for_attempt: Callable[[int], LaunchPlan],
    max_restarts: int,
    terminal: TextIO,
    quiet: bool = False,
    progress_timeout_s: Optional[float] = None,
    on_plan: Optional[Callable[[LaunchPlan], None]] = None,
    on_execution: Optional[Callable[[Execution], None]] = None,
    observers: Sequence[LineObserver] = (),
    view: Optional[TerminalOptions] = None,
    resumes: bool = False,
    on_failure: Optional[Callable[[JobResult], None]] = None,
) -> JobResult:
    """Run attempts until one needs no restart; ``on_execution`` sees each attempt's execution first.

    ``view``: what the terminal shows (ranks, folding); ``resumes``: ranks resume from hvdjob's
    checkpoints (managed training), which is what the relaunch message then says; ``on_failure`` hears
    each failed attempt that will be restarted, before the next plan is made (e.g. to leave a lost host out).
    """
    attempt = 0
    failures: List[JobResult] = []
    with _GapSignals() as gap:
        while True:
            try:
                plan = plan_for_attempt(attempt)
            except LaunchError as exc:
                if not failures:
                    raise  # nothing ran yet: the caller reports it as a launch error
                # No restart possible (a host down, too few slots without a lost host): the last failure,
                # already reported in full above, stands, with why it was not restarted.
                return dataclasses.replace(failures[-1], tail=(), secondary=(), message=(
                    f"job failed: not restarted after attempt {attempt} of {max_restarts + 1}: {exc}"))
            if on_plan:
                on_plan(plan)
            execution = Execution(plan, terminal=terminal, quiet=quiet, progress_timeout_s=progress_timeout_s,
                                  view=view)
            for observer in observers:
                execution.router.add_observer(observer)
            if failures:
                previous = failures[-1]
                since = f" {time.monotonic() - previous.failed_at:.1f} s after the failure" if previous.failed_at else ""
                what = f"{plan.np} ranks" if plan.np else "the job"  # elastic plans have no fixed layout
                how = ("they resume from the latest checkpoint" if resumes else
                       "the script starts again (it resumes only from checkpoints it saves itself)")
                execution.router.note(f"hvdjob: attempt {attempt + 1} of {max_restarts + 1}: relaunching {what}{since}; "
                                      f"{how}")
            if on_execution:
                on_execution(execution)
            result = execution.run()
            if not should_restart(result, attempt, max_restarts):
                return _final(result, attempt, max_restarts)
            _report_failure(terminal, result, attempt, max_restarts)
            failures.append(result)
            if on_failure:
                on_failure(result)
            attempt += 1
            time.sleep(RESTART_PAUSE_S)
            if gap.received is not None:
                name = signal.Signals(gap.received).name
                return JobResult(128 + gap.received, f"job stopped on {name} before attempt {attempt + 1}",
                                 stopped_by_signal=name)


def _report_failure(terminal: TextIO, result: JobResult, attempt: int, max_restarts: int) -> None:
    ended = ""
    if result.failed_at is not None and result.ended_at is not None:
        ended = f" (all ranks stopped {result.ended_at - result.failed_at:.1f} s after the failure)"
    lines = result.report_lines()
    terminal.write(f"hvdjob: attempt {attempt + 1} of {max_restarts + 1} failed{ended}: {lines[0]}\n")
    for line in lines[1:]:
        terminal.write(f"{line}\n")
    terminal.flush()


def _final(result: JobResult, attempt: int, max_restarts: int) -> JobResult:
    """Say which attempt the outcome belongs to when restarts were allowed."""
    if max_restarts == 0 or result.ok:
        return result
    prefix = "job failed: "
    if result.message.startswith(prefix):
        message = f"job failed on attempt {attempt + 1} of {max_restarts + 1}: {result.message[len(prefix):]}"
        return dataclasses.replace(result, message=message)
    return result
