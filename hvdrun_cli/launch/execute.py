"""Run a LaunchPlan: the only place in hvdjob that starts job processes.

It starts the plan's processes (each in its own session so it can be signalled as a group), routes
their output, and watches them. When a rank fails, the others are stopped and the failure is named
with the last lines of that rank's log. SIGINT/SIGTERM stop every rank gracefully (ranks checkpoint
and exit 75); a second Ctrl-C kills at once. Whatever happens, no process of the run outlives it:
besides process groups, a final sweep kills any process carrying this run's ``HVDJOB_RUN_ID``
(horovodrun and mpirun start ranks in sessions of their own). And when hvdjob itself is killed
(``kill -9``, the OOM killer), the job ends within seconds without it: launcher processes get
SIGTERM from the kernel, rank supervisors stop their ranks (see liveness.py). A remote host that drops
off the network (no RST: everything to it stalls) is noticed by a probe of its ssh port within
seconds and ends the attempt with a line naming it (see hostwatch.py).

Elastic plans differ in two ways. A worker that dies is Horovod's business (the others carry on), so
the job's outcome is horovodrun's exit code. And Horovod itself ends a worker it drops with SIGTERM,
so a graceful stop reaches the ranks as SIGUSR1 instead (ranks checkpoint and exit 75 on either).
"""
from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, TextIO, Tuple

from hvdrun_cli.contract import EXIT_FAILED
from hvdrun_cli.launch.blame import describe_silent, silent_ranks
from hvdrun_cli.launch.elastic import ELASTIC_LAUNCHER
from hvdrun_cli.launch.hostwatch import HostWatch, LostHost, watched_hosts
from hvdrun_cli.launch.liveness import die_with, launcher_identity_env
from hvdrun_cli.files import write_text_atomic
from hvdrun_cli.launch.output import EXIT_CHECKPOINTED, OutputRouter, RankEnd, pump
from hvdrun_cli.launch.terminal import TerminalOptions
from hvdrun_cli.launch.plan import LaunchPlan
from hvdrun_cli.launch.rendezvous import Rendezvous
from hvdrun_cli.launch.watchdog import ProgressWatchdog, Stall

EXIT_PREEMPTED = EXIT_CHECKPOINTED
FAILURE_GRACE_S = 5.0  # peers of a dead rank are usually stuck in a collective: don't wait long
STOP_GRACE_S = 30.0  # time given to ranks to checkpoint after Ctrl-C / SIGTERM / preemption
POLL_S = 0.1
# A failure that looks like a consequence (Horovod shut down, peer lost) waits this long for the
# failure that caused it to be reported, so the first line printed names the right rank.
BLAME_WINDOW_S = 3.0
EXIT_STALLED = 124  # like timeout(1)


@dataclass(frozen=True)
class JobResult:
    exit_code: int
    message: str
    failed_rank: Optional[int] = None
    tail: Tuple[str, ...] = ()
    stopped_by_signal: Optional[str] = None
    wall_time_s: float = 0.0
    failed_at: Optional[float] = None  # time.monotonic() when the failure was noticed
    ended_at: Optional[float] = None  # time.monotonic() when the last process of the attempt was gone
    secondary: Tuple[str, ...] = ()  # other ranks' ends that followed the failure, one line each
    lost_hosts: Tuple[str, ...] = ()  # hosts that dropped off the network during the attempt

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def report_lines(self) -> List[str]:
        """What a user reads: the message, the failed rank's last lines, then the ranks that followed."""
        lines = [self.message] + [f"    {line}" for line in self.tail]
        if self.secondary:
            lines.append("then:")
            lines += [f"    {line}" for line in self.secondary]
        return lines


@dataclass
class _State:
    stop_signal: Optional[int] = None
    stop_requested_at: Optional[float] = None
    kill_now: bool = False
    failure: Optional[RankEnd] = None
    failure_at: Optional[float] = None
    failure_seen_at: Optional[float] = None  # a failure was seen, but may be a consequence
    stall: Optional[Stall] = None
    lost: Optional[LostHost] = None
    forward_queue: List[Tuple[int, int]] = field(default_factory=list)  # (received, forwarded)
    noted_ends: int = 0


class Execution:
    def __init__(
        self,
        plan: LaunchPlan,
        terminal: TextIO = sys.stdout,
        quiet: bool = False,
        progress_timeout_s: Optional[float] = None,
        install_signal_handlers: bool = True,
        view: Optional[TerminalOptions] = None,
    ):
        self.plan = plan
        self.router = OutputRouter(plan.run_dir, terminal, quiet=quiet, options=view,
                                   ranks=[slot.rank for slot in plan.layout])
        self._procs: List[subprocess.Popen] = []
        self._threads: List[threading.Thread] = []
        self._state = _State()
        self._progress_timeout_s = progress_timeout_s
        self._install_handlers = install_signal_handlers
        self._rendezvous: Optional[Rendezvous] = None
        self._elastic = plan.launcher == ELASTIC_LAUNCHER
        self._watchdog: Optional[ProgressWatchdog] = None
        self._host_watch: Optional[HostWatch] = None

    # -- public -------------------------------------------------------------------------------
    def run(self) -> JobResult:
        started = time.monotonic()
        previous = self._install_signal_handlers() if self._install_handlers else {}
        result: Optional[JobResult] = None
        try:
            self.router.log(f"attempt {self.plan.attempt + 1}: run {self.plan.run_id}, launcher {self.plan.launcher}, "
                            f"{self.plan.np} ranks, hvdjob pid {os.getpid()}")
            self._write_files()
            self._start_rendezvous()
            self._spawn_all()
            self._start_host_watch()
            if self._progress_timeout_s:
                self._watchdog = ProgressWatchdog(
                    self._progress_timeout_s, self.router, socket.gethostname(), time.monotonic()
                )
            result = self._watch()
        finally:
            if self._host_watch:
                self._host_watch.stop()
            self._stop_everything()
            ended_at = time.monotonic()
            self._restore_signal_handlers(previous)
            if self._rendezvous:
                self._rendezvous.stop()
            for thread in self._threads:
                thread.join(timeout=5)
            if result is not None:
                self.router.log(f"ended: exit code {result.exit_code}: {result.message}")
            self.router.close()
        return JobResult(
            exit_code=result.exit_code,
            message=result.message,
            failed_rank=result.failed_rank,
            tail=result.tail,
            stopped_by_signal=result.stopped_by_signal,
            wall_time_s=time.monotonic() - started,
            failed_at=self._state.failure_at,
            ended_at=ended_at,
            secondary=result.secondary,
            lost_hosts=result.lost_hosts,
        )

    def request_stop(self, signum: int = signal.SIGTERM) -> None:
        """Stop gracefully (as on SIGTERM); callable from another thread."""
        self._on_signal(signum, None)

    # -- setup --------------------------------------------------------------------------------
    def _write_files(self) -> None:
        for f in self.plan.files:
            os.makedirs(os.path.dirname(f.path) or ".", exist_ok=True)
            write_text_atomic(f.path, f.content)

    def _start_rendezvous(self) -> None:
        if self.plan.rendezvous_port is None:
            return
        self._rendezvous = Rendezvous(self.plan.rendezvous_port, self.plan.layout)
        self._rendezvous.start()

    def _spawn_all(self) -> None:
        base_env = dict(os.environ)
        base_env.update(self.plan.env_dict())
        base_env.update(launcher_identity_env())  # how the job's processes tell that hvdjob is gone
        for proc_spec in self.plan.processes:
            env = dict(base_env)
            env.update(proc_spec.env_dict())
            # mpirun/srun/horovodrun get SIGTERM from the kernel if hvdjob dies, and end their job;
            # rank supervisors (the local launcher) watch hvdjob themselves.
            launcher_process = proc_spec.rank is None
            proc = subprocess.Popen(
                list(proc_spec.argv),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with(os.getpid(), signal.SIGTERM) if launcher_process else None,
            )
            self._procs.append(proc)
            self.router.log(f"started pid {proc.pid}: {shlex.join(proc_spec.argv)}")
            assert proc.stdout is not None
            thread = threading.Thread(target=pump, args=(proc.stdout, self.router), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _start_host_watch(self) -> None:
        """Watch the other hosts ranks run on, so one that drops off the network ends the job in seconds."""
        hosts = watched_hosts(self.plan.launcher, [s.hostname for s in self.plan.layout], socket.gethostname())
        if hosts:
            self._host_watch = HostWatch(hosts).start()

    # -- watching -----------------------------------------------------------------------------
    def _watch(self) -> JobResult:
        st = self._state
        while True:
            self._deliver_forwarded_signals()
            codes = [p.poll() for p in self._procs]
            if self._elastic:
                self._note_elastic_rank_ends()
                failure = None  # Horovod elastic replaces or drops failed workers itself
            else:
                failure = self.router.first_failure()
                if failure is None:
                    failure = self._failed_launcher_process(codes)
            now = time.monotonic()
            finished = all(c is not None for c in codes)
            if failure and st.failure is None and st.stop_signal is None and self._decided(failure, now, finished):
                st.failure, st.failure_at = failure, now
                self.router.note(f"hvdjob: {failure.describe()}; stopping the other ranks")
                self._signal_all(signal.SIGTERM)
            if finished:
                self._drain_output()
                return self._result(codes)
            self.router.tick()
            if st.failure_at is not None and now - st.failure_at > FAILURE_GRACE_S:
                self._signal_all(signal.SIGKILL)
            if st.stop_requested_at is not None and (st.kill_now or now - st.stop_requested_at > STOP_GRACE_S):
                self._signal_all(signal.SIGKILL)
            lost = self._host_watch.lost() if self._host_watch and st.failure is None else None
            if lost and st.stop_signal is None:
                ranks = self._ranks_on(lost.name)
                self.router.note(f"hvdjob: {lost.describe()}; stopping the job")
                st.lost, st.failure_at = lost, now
                st.failure = RankEnd(ranks[0] if ranks else -1, EXIT_FAILED, None, now)
                self._signal_all(signal.SIGTERM)
            stall = self._watchdog.check(now) if self._watchdog and st.failure is None else None
            if stall and st.stop_signal is None:
                self.router.note(f"hvdjob: {stall.describe()}; stopping the job")
                st.stall, st.failure_at = stall, now
                st.failure = RankEnd(stall.ranks[0], EXIT_STALLED, None, now)
                self._signal_all(signal.SIGTERM)
            time.sleep(POLL_S)

    def _decided(self, failure: RankEnd, now: float, finished: bool) -> bool:
        """Act on a failure now, or wait briefly for the failure it may be a consequence of."""
        st = self._state
        if st.failure_seen_at is None:
            st.failure_seen_at = now
        return finished or not self.router.is_consequence(failure) or now - st.failure_seen_at >= BLAME_WINDOW_S

    def _drain_output(self, limit_s: float = 2.0) -> None:
        """Let the readers route what the ended processes wrote last (their final lines say why)."""
        deadline = time.monotonic() + limit_s
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def _note_elastic_rank_ends(self) -> None:
        """Say when an elastic worker ends; Horovod decides whether the job goes on without it."""
        st = self._state
        ends = list(self.router.ends)
        for end in ends[st.noted_ends:]:
            if end.failed and st.stop_signal is None:
                self.router.note(f"hvdjob: {end.describe()}; Horovod's elastic driver goes on without it if "
                                 "enough workers remain")
        st.noted_ends = len(ends)

    def _failed_launcher_process(self, codes: List[Optional[int]]) -> Optional[RankEnd]:
        """A launcher process (e.g. mpirun) that died without any rank reporting a failure."""
        for proc_spec, code in zip(self.plan.processes, codes):
            if code not in (None, 0) and not self.router.ends:
                rank = proc_spec.rank if proc_spec.rank is not None else -1
                if code < 0:
                    return RankEnd(rank, None, signal.Signals(-code).name, time.monotonic())
                return RankEnd(rank, code, None, time.monotonic())
        return None

    def _ranks_on(self, host: str) -> List[int]:
        return [slot.rank for slot in self.plan.layout if slot.hostname == host]

    def _result(self, codes: List[Optional[int]]) -> JobResult:
        st = self._state
        if st.lost is not None:
            ranks = self._ranks_on(st.lost.name)
            lost = tuple(h.name for h in self._host_watch.all_lost()) if self._host_watch else (st.lost.name,)
            which = ("rank " if len(ranks) == 1 else "ranks ") + ", ".join(map(str, ranks))
            return JobResult(EXIT_FAILED, f"job failed: {st.lost.describe()}; {which} ran there",
                             ranks[0] if ranks else None, lost_hosts=lost)
        if st.stall is not None:
            rank = st.stall.ranks[0]
            tail = tuple(self.router.tail(rank))
            where = f"; last lines of {self.router.rank_log_path(rank)}:" if tail else ""
            return JobResult(EXIT_STALLED, f"job stopped by the watchdog: {st.stall.describe()}{where}", rank, tail)
        verdict = self.router.failure_verdict() if not self._elastic else None
        if st.failure is not None and verdict is not None and st.failure.exit_code != EXIT_STALLED:
            st.failure = verdict.first  # every end is in now: the first failure may have been reported late
        if st.failure is not None:
            rank = self._explaining_rank(st.failure)
            tail = tuple(self.router.tail(rank)) if rank >= 0 else ()
            where = f"; last lines of {self.router.rank_log_path(rank)}:" if tail else ""
            code = st.failure.exit_code
            if code is None:
                code = 128 + _signal_number(st.failure.signal_name)
            what = st.failure.describe() if st.failure.rank >= 0 else f"launcher exited with code {code}"
            if rank != st.failure.rank:
                what += f" (rank {rank} reported the error)"
            secondary = tuple(f"{end.describe()}: {why}" for end, why in verdict.secondary
                              if end.rank != rank) if verdict else ()
            silent = self._silent_cause(st.failure)
            if silent:
                what = f"{describe_silent(silent, self._host_of())}; {what} waiting for {'it' if len(silent) == 1 else 'them'}"
            culprit = silent[0] if silent else rank
            return JobResult(code or 1, f"job failed: {what}{where}", culprit if culprit >= 0 else None, tail,
                             secondary=secondary)
        if st.stop_signal is not None:
            name = signal.Signals(st.stop_signal).name
            if self.router.checkpointed_stop():
                return JobResult(EXIT_PREEMPTED, f"job stopped on {name}; ranks saved a checkpoint", stopped_by_signal=name)
            return JobResult(128 + st.stop_signal, f"job stopped on {name}", stopped_by_signal=name)
        if self.router.checkpointed_stop():
            return JobResult(EXIT_PREEMPTED, "ranks saved a checkpoint and stopped on request")
        worst = max((c or 0) for c in codes)
        if worst == 0:
            return JobResult(0, "job finished")
        if self._elastic:
            return self._elastic_failure(worst)
        return JobResult(worst, f"job failed: launcher exited with code {worst}")

    def _silent_cause(self, failure: RankEnd) -> List[int]:
        """Ranks that never reported an end, when every failure seen only followed a peer's (blame.py)."""
        if failure.rank < 0 or not self.router.is_consequence(failure):
            return []
        return silent_ranks((slot.rank for slot in self.plan.layout), (end.rank for end in self.router.ends))

    def _host_of(self) -> Dict[int, str]:
        """Each rank's host: as the rank reported it, else as planned."""
        return {slot.rank: self.router.rank_hosts.get(slot.rank, slot.hostname) for slot in self.plan.layout}

    def _explaining_rank(self, failure: RankEnd) -> int:
        """The rank whose log says why the job failed.

        Ranks that fail together (a check made on rank 0 and shared with all) end in any order,
        and only one of them printed the ``error:`` line; the others may even be stopped by us
        before they exit on their own.
        """
        def reports_error(rank: int) -> bool:
            return any(line.startswith("error:") for line in self.router.tail(rank))

        if failure.rank < 0 or reports_error(failure.rank):
            return failure.rank
        return next((r for r in sorted(self.router.rank_pids) if reports_error(r)), failure.rank)

    def _elastic_failure(self, code: int) -> JobResult:
        """horovodrun gave up (too few workers left, reset limit, ...): name the workers that failed."""
        failed = [e for e in self.router.ends if e.failed]
        if not failed:
            return JobResult(code, f"job failed: horovodrun exited with code {code}")
        last = failed[-1]
        tail = tuple(self.router.tail(last.rank))
        what = ", ".join(e.describe() for e in failed)
        return JobResult(code, f"job failed: horovodrun exited with code {code} after {what}; last lines of "
                               f"{self.router.rank_log_path(last.rank)}:", last.rank, tail)

    # -- signals ------------------------------------------------------------------------------
    def _install_signal_handlers(self) -> Dict[int, object]:
        previous: Dict[int, object] = {}
        if threading.current_thread() is not threading.main_thread():
            return previous
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP):
            previous[sig] = signal.signal(sig, self._on_signal)
        return previous

    @staticmethod
    def _restore_signal_handlers(previous: Dict[int, object]) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]

    def _on_signal(self, signum: int, _frame: object) -> None:
        st = self._state
        if signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            if st.stop_signal is not None:
                st.kill_now = True  # second Ctrl-C: no more waiting
                return
            st.stop_signal = signum
            st.stop_requested_at = time.monotonic()
            st.forward_queue.append((signum, signal.SIGUSR1 if self._elastic else signal.SIGTERM))
        else:
            # SIGUSR1/2: Slurm's "time is nearly up" warning: ranks checkpoint and stop.
            if st.stop_signal is None:
                st.stop_signal = signum
                st.stop_requested_at = time.monotonic()
            st.forward_queue.append((signum, signum))

    def _deliver_forwarded_signals(self) -> None:
        queue = self._state.forward_queue
        while queue:
            received, forwarded = queue.pop(0)
            self.router.note(f"hvdjob: {signal.Signals(received).name} received; asking ranks to checkpoint and stop")
            self._signal_all(forwarded)

    def _signal_all(self, signum: int) -> None:
        """Signal the launcher processes; they (or the rank supervisors) pass it on to the ranks.

        Only SIGKILL goes to whole process groups and to every process of the run: any other signal
        goes to processes that handle it, because a rank still importing its framework would die of
        an unhandled SIGUSR1 instead of checkpointing.
        """
        for proc in self._procs:
            if proc.poll() is None:
                try:
                    if signum == signal.SIGKILL:
                        os.killpg(proc.pid, signum)
                    elif not self._elastic:  # horovodrun would end every elastic worker at once
                        proc.send_signal(signum)
                except (ProcessLookupError, PermissionError):
                    pass
        if signum == signal.SIGKILL:
            signal_run_processes(self.plan.run_id, signum)
        elif self.plan.launcher in ("gloo", ELASTIC_LAUNCHER):
            # horovodrun neither forwards SIGUSR1 nor stops ranks gracefully: reach the supervisors.
            signal_run_processes(self.plan.run_id, signum, supervisors_only=True)

    def _stop_everything(self) -> None:
        if any(p.poll() is None for p in self._procs):
            self._signal_all(signal.SIGKILL)
        for proc in self._procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        signal_run_processes(self.plan.run_id, signal.SIGKILL)


def _signal_number(name: Optional[str]) -> int:
    try:
        return int(signal.Signals[name]) if name else 1
    except KeyError:
        return 1


def run_process_ids(run_id: str) -> List[int]:
    """Processes on this machine whose environment carries this run's id."""
    marker = f"HVDJOB_RUN_ID={run_id}".encode()
    pids = []
    own = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == own:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if marker in fh.read().split(b"\0"):
                    pids.append(int(entry))
        except (OSError, PermissionError):
            continue
    return pids


def _is_supervisor(pid: int) -> bool:
    """A rank supervisor is ``python -m hvdrun_cli.launch.rank_io ...`` itself.

    Not the shell horovodrun starts it through, nor horovodrun or mpirun, whose command lines
    contain it too: those must not receive SIGUSR1, which would kill them.
    """
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read().split(b"\0")
    except OSError:
        return False
    return argv[1:3] == [b"-m", b"hvdrun_cli.launch.rank_io"]


def signal_run_processes(run_id: str, signum: int, supervisors_only: bool = False) -> int:
    count = 0
    for pid in run_process_ids(run_id):
        if supervisors_only and not _is_supervisor(pid):
            continue
        try:
            os.kill(pid, signum)
            count += 1
        except (ProcessLookupError, PermissionError):
            pass
    return count
