"""One launch from start to end: the single path ``hvdjob run``, ``hvdjob smoke`` and ``hvdjob bench`` take.

A :class:`Launch` plans on construction and writes nothing, so ``--dry-run`` prints the plan that
would run, and bad hosts or a bad layout fail before any file exists. :meth:`Launch.run` then, in
this order: checks that every remote host of the plan answers (the reachability gate), creates the
run directory (and points ``<run_root>/<name>/latest`` at it when it is the default place), writes
``spec.json``, runs the attempts (a fresh plan per restart, each saved as ``plan.json``, leaving out
hosts that dropped off the network when the others have the slots: spare_hosts.py) under an
optional wall-clock limit that stops the job gracefully, and writes ``result.json``.

Every call into the planner goes through :meth:`Launch._plan`, so a change in how plans are made
touches one line here.
"""
from __future__ import annotations

import dataclasses
import os
import signal
import sys
import threading
from dataclasses import dataclass
from typing import Callable, List, Mapping, Optional, TextIO, Tuple

from hvdrun_cli.contract import PLAN_FILE
from hvdrun_cli.files import write_json_atomic
from hvdrun_cli.launch.attempts import run_attempts
from hvdrun_cli.launch.execute import Execution, JobResult
from hvdrun_cli.launch.output import LineObserver
from hvdrun_cli.launch.plan import LaunchPlan
from hvdrun_cli.launch.planner import SPEC_JSON, resolve_hosts
from hvdrun_cli.launch.prepare import plan_here, write_result
from hvdrun_cli.launch.terminal import TerminalOptions
from hvdrun_cli.launch.rundir import create_run_dir, new_run_id, planned_run_dir
from hvdrun_cli.launch.spare_hosts import exclusion_line, hosts_without
from hvdrun_cli.launch.tools import Tools, probe_tools
from hvdrun_cli.preflight.gate import require_reachable_hosts
from hvdrun_cli.spec.model import JobSpec

KILL_GRACE_S = 5.0  # after the time limit, ranks get this long to checkpoint before they are killed


@dataclass(frozen=True)
class RunOptions:
    """How to run a planned launch. ``None`` values fall back to the spec's own settings."""

    max_restarts: Optional[int] = None  # None: the spec's ``restarts``
    progress_timeout_s: Optional[float] = None  # None: the spec's ``watchdog.progress_timeout_seconds``
    time_limit_s: Optional[float] = None  # stop the job gracefully after this many seconds (smoke, bench)
    quiet: bool = False  # keep rank output out of the terminal (it is always in rank.N.log)
    terminal: Optional[TextIO] = None  # None: sys.stdout at run time
    observers: Tuple[LineObserver, ...] = ()  # see every rank line as it arrives (the progress view)
    view: Optional[TerminalOptions] = None  # which ranks the terminal shows, folding (None: all, auto)


@dataclass(frozen=True)
class RunOutcome:
    """How the launch ended: the job's result, where its files are, and whether the time limit ended it."""

    result: JobResult
    run_dir: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.result.ok and not self.timed_out


class Launch:
    """A job planned for this machine, ready to run. Constructing it probes tools and plans, nothing more."""

    def __init__(
        self,
        spec: JobSpec,
        run_dir: Optional[str] = None,
        run_id: Optional[str] = None,
        tools: Optional[Tools] = None,
        environ: Optional[Mapping[str, str]] = None,
    ):
        self.spec = spec
        self.run_id = run_id or new_run_id()
        self.run_dir = planned_run_dir(spec, self.run_id, run_dir)
        self._default_place = run_dir is None
        self._tools = tools or probe_tools(nccl=spec.horovod.hierarchical_allreduce)  # once for every attempt
        self._environ = environ
        self._lost_hosts: Tuple[str, ...] = ()  # hosts that dropped off the network in earlier attempts
        self._terminal: TextIO = sys.stdout
        self._attempt_spec = spec  # the spec the next plan is made from (lost hosts left out)
        self.plan = self._plan(0)

    def _plan(self, attempt: int) -> LaunchPlan:
        """The only call into the planner."""
        return plan_here(self._attempt_spec, self.run_dir, self.run_id, attempt=attempt, tools=self._tools,
                         environ=self._environ)

    def _plan_for_attempt(self, attempt: int) -> LaunchPlan:
        if attempt == 0:
            return self.plan
        self._attempt_spec = self._spec_without_lost_hosts()
        plan = self._plan(attempt)
        require_reachable_hosts(plan)  # a host that went down since the last attempt is named in seconds
        return plan

    def _note_failure(self, result: JobResult) -> None:
        self._lost_hosts += tuple(h for h in result.lost_hosts if h not in self._lost_hosts)

    def _spec_without_lost_hosts(self) -> JobSpec:
        """The spec for a restart: the lost hosts left out, the job's size kept (raises when it cannot be)."""
        if not self._lost_hosts:
            return self.spec
        hosts = resolve_hosts(self.spec, os.environ if self._environ is None else self._environ).hosts
        remaining = hosts_without(hosts, self._lost_hosts, self.plan.np)
        self._terminal.write(f"hvdjob: {exclusion_line(self._lost_hosts, hosts, remaining, self.plan.np)}\n")
        self._terminal.flush()
        resources = dataclasses.replace(self.spec.resources, hosts=tuple(f"{h.name}:{h.slots}" for h in remaining),
                                        hostfile=None, np=self.plan.np)
        return dataclasses.replace(self.spec, resources=resources)

    def _save_plan(self, plan: LaunchPlan) -> None:
        write_json_atomic(os.path.join(self.run_dir, PLAN_FILE), plan.to_dict())

    def run(self, options: RunOptions = RunOptions(),
            on_started: Optional[Callable[[str], None]] = None) -> RunOutcome:
        """Run the job to its end (restarts included); ``on_started`` hears the run directory once it exists.

        Raises :class:`LaunchError` when a remote host does not answer (before anything is written).
        """
        require_reachable_hosts(self.plan)
        create_run_dir(self.run_dir, link_latest=self._default_place)
        write_json_atomic(os.path.join(self.run_dir, SPEC_JSON), self.spec.to_dict())
        if on_started:
            on_started(self.run_dir)
        terminal = options.terminal or sys.stdout
        self._terminal = terminal
        restarts = self.spec.restarts if options.max_restarts is None else options.max_restarts
        timeout = options.progress_timeout_s or self.spec.watchdog.progress_timeout_seconds
        with _TimeLimit(options.time_limit_s, terminal) as limit:
            result = run_attempts(
                self._plan_for_attempt,
                max_restarts=restarts,
                terminal=terminal,
                quiet=options.quiet,
                progress_timeout_s=timeout,
                on_plan=self._save_plan,
                on_execution=limit.watch,
                observers=options.observers,
                view=options.view,
                resumes=self.spec.managed and self.spec.checkpoint.resume != "never",
                on_failure=self._note_failure,
            )
        write_result(self.run_dir, result)
        return RunOutcome(result, self.run_dir, timed_out=limit.reached)


class _TimeLimit:
    """Stops the running execution gracefully at the limit, and for good ``KILL_GRACE_S`` later.

    An execution that starts after the limit (a restart) is stopped as soon as it is watched.
    """

    def __init__(self, seconds: Optional[float], terminal: TextIO):
        self.seconds = seconds
        self.reached = False
        self._terminal = terminal
        self._current: Optional[Execution] = None
        self._lock = threading.Lock()
        self._timers: List[threading.Timer] = []
        if seconds is not None:
            self._timers = [threading.Timer(max(0.0, seconds), self._stop),
                            threading.Timer(max(0.0, seconds) + KILL_GRACE_S, self._stop)]
        for timer in self._timers:
            timer.daemon = True

    def __enter__(self) -> "_TimeLimit":
        for timer in self._timers:
            timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for timer in self._timers:
            timer.cancel()

    def watch(self, execution: Execution) -> None:
        with self._lock:
            self._current = execution
            if self.reached:
                execution.request_stop(signal.SIGTERM)

    def _stop(self) -> None:
        with self._lock:
            if not self.reached:
                self._terminal.write(f"hvdjob: time limit of {self.seconds:g} s reached; stopping the job\n")
                self._terminal.flush()
            self.reached = True
            if self._current is not None:
                self._current.request_stop(signal.SIGTERM)  # a second request kills at once
