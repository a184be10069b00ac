"""Live rank output: demultiplex ``[RANK] text`` lines to the terminal and to per-rank log files.

Every rank's output reaches the launching machine through its launcher (our own pipes, horovodrun,
mpirun or srun), already labelled by the rank supervisor. This module keeps the logs on the
launching machine, so they exist even when ranks ran on hosts without a shared filesystem.

A line ending in ``\r`` is a live update of a line the rank is redrawing (a progress bar): it is
drawn on the terminal at once and counts as progress, but only the line's final state (the line
that follows it without ``\r``) goes to the rank log. What the terminal shows (ranks, folding,
noise) is decided in terminal.py; ``launcher.log`` keeps, with timestamps, what hvdjob started,
everything the launcher printed that names no rank, hvdjob's own messages and the outcome.

Progress observers: ``router.add_progress_observer(fn)`` registers ``fn(rank, mark)``, called with
a :class:`ProgressMark` for every progress mark a rank prints (``hvdjob: at step N [key=value ...]``),
outside the router's lock, from the reader thread; it must return quickly and not raise.
"""
from __future__ import annotations

import os
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import IO, Callable, Deque, Dict, Iterable, List, Optional, TextIO, Tuple

from hvdrun_cli.contract import (EXIT_STOPPED, LAUNCHER_LOG, LOG_ONLY_MARK, Ended, log_only, parse_ended, parse_labelled,
                                 parse_progress_fields, parse_started, progress_mark, rank_log_name)
from hvdrun_cli.launch.blame import Verdict, consequence_of_peer, rank_failures
from hvdrun_cli.launch.terminal import ERROR_LINE, TerminalOptions, TerminalView

# horovodrun labels lines itself ("[1]<stdout>:"); ours follow it.
_HOROVODRUN_PREFIX = re.compile(r"^\[\d+\]<std(?:out|err)>:")
# Progress marks: managed ranks print one every few seconds of training (all ranks, not only rank 0),
# so the watchdog sees progress even when progress lines are minutes apart. Hidden from the terminal.
__all__ = ["EXIT_CHECKPOINTED", "LOG_ONLY_MARK", "LineObserver", "OutputRouter", "RankEnd", "StallReport",
           "log_only", "progress_mark", "pump"]
# Horovod's own log lines ("[2026-01-01 10:00:00.123456: W .../stall_inspector.cc:107] ..."): a hung
# job keeps printing them, so they are output but never progress.
_HOROVOD_LOG = re.compile(r"^\[\d{4}-\d\d-\d\d [\d:. ]+: [TDIWEF] ")
# Horovod's stall inspector names the ranks a collective waits for, one per line after this header:
# "1: [allreduce.grad_0, ...]" ("1!: [...]" once it is about to shut down).
_MISSING_HEADER = "Missing ranks:"
_MISSING_LINE = re.compile(r"^(\d+)!?: \[(.*)\]$")
TAIL_LINES = 20
EXIT_CHECKPOINTED = EXIT_STOPPED  # a rank saved a checkpoint and stopped on request; resume continues
# Once ranks stop with a checkpoint, launchers (srun --kill-on-bad-exit, mpirun) may terminate the
# slower peers: such deaths are part of the orderly stop, not failures.
_STOP_SIGNALS = ("SIGTERM", "SIGKILL", "SIGINT")


@dataclass(frozen=True)
class ProgressMark:
    """One progress mark as the launcher saw it: the step and any ``key=value`` fields (as text)."""

    step: int
    fields: Dict[str, str] = field(default_factory=dict)
    at: float = 0.0  # time.monotonic() when it was routed


ProgressObserver = Callable[[int, ProgressMark], None]


# Called with (rank, text) for every rank line the router records, bookkeeping lines included
# (progress marks, start and end lines; not live ``\r`` updates), under the router's lock: keep it quick.
LineObserver = Callable[[int, str], None]


@dataclass(frozen=True)
class StallReport:
    """Horovod's stall inspector, seen on one rank: ranks the others wait for, with the tensors."""

    reporter: int
    missing: Dict[int, str]
    at: float


@dataclass(frozen=True)
class RankEnd(Ended):
    at: float = 0.0

    @property
    def failed(self) -> bool:
        return self.exit_code not in (0, EXIT_CHECKPOINTED)

    @property
    def checkpointed(self) -> bool:
        return self.exit_code == EXIT_CHECKPOINTED

    def describe(self) -> str:
        if self.signal_name:
            return f"rank {self.rank} was killed by {self.signal_name}"
        return f"rank {self.rank} exited with code {self.exit_code}"


class OutputRouter:
    """Thread-safe sink for launcher output lines."""

    def __init__(self, run_dir: str, terminal: TextIO, quiet: bool = False,
                 options: Optional[TerminalOptions] = None, ranks: Iterable[int] = ()):
        self._run_dir = run_dir
        options = options or TerminalOptions()
        if quiet:
            options = TerminalOptions(options.ranks, options.fold, quiet=True)
        self._view = TerminalView(terminal, options, ranks)
        self._lock = threading.Lock()
        self._logs: Dict[int, IO[str]] = {}
        self._launcher_log: IO[str] = open(os.path.join(run_dir, LAUNCHER_LOG), "a", encoding="utf-8")
        self._tails: Dict[int, Deque[str]] = {}
        self.first_error_at: Dict[int, float] = {}  # when each rank's first error line was seen
        self._progress_observers: List[ProgressObserver] = []
        self._observers: List[LineObserver] = []
        self.ends: List[RankEnd] = []
        self.rank_pids: Dict[int, int] = {}
        self.rank_hosts: Dict[int, str] = {}
        self.last_output: Dict[int, float] = {}
        self.last_progress: Dict[int, float] = {}  # output that shows work (not bookkeeping or Horovod logs)
        self.progress_step: Dict[int, int] = {}  # from progress marks
        self.stall_reports: List[StallReport] = []
        self._in_missing_block: Dict[int, Dict[int, str]] = {}

    def rank_log_path(self, rank: int) -> str:
        return os.path.join(self._run_dir, rank_log_name(rank))

    def add_progress_observer(self, observer: ProgressObserver) -> None:
        """Call ``observer(rank, mark)`` for every progress mark (see the module docstring)."""
        with self._lock:
            self._progress_observers.append(observer)

    def add_observer(self, observer: LineObserver) -> None:
        """Call ``observer(rank, text)`` for every rank line recorded (see :data:`LineObserver`)."""
        with self._lock:
            self._observers.append(observer)

    def feed(self, raw: bytes) -> None:
        text = raw.decode("utf-8", errors="replace").rstrip("\n")
        text = _HOROVODRUN_PREFIX.sub("", text, count=1)
        labelled = parse_labelled(text)
        mark: Optional[ProgressMark] = None
        with self._lock:
            if not labelled:
                text = text.rstrip("\r")
                self._log_launcher(text)
                self._view.message(text)
                return
            rank, body = labelled
            if body.endswith("\r"):
                now = time.monotonic()
                self.last_output[rank] = self.last_progress[rank] = now
                self._view.rank_update(rank, body[:-1])
                return
            shown, mark = self._record(rank, body)
            if shown is not None:
                self._view.rank_line(rank, body, always=shown)
            for line_observer in self._observers:
                line_observer(rank, body)
            observers = list(self._progress_observers) if mark else []
        for observer in observers:
            observer(rank, mark)  # type: ignore[arg-type]

    def tick(self) -> None:
        """Let the terminal show lines held for folding once their window has passed."""
        with self._lock:
            self._view.tick()

    def _record(self, rank: int, body: str) -> Tuple[Optional[bool], Optional[ProgressMark]]:
        """Keep the line in the rank's log.

        Returns (None: not shown | False: shown, may fold | True: shown, never folded; the progress
        mark, if the line is one).
        """
        now = time.monotonic()
        mark = parse_progress_fields(body)
        if mark is not None:
            step, fields = mark
            self.progress_step[rank] = step
            self.last_progress[rank] = self.last_output[rank] = now
            return None, ProgressMark(step, fields, now)
        log_only_line = body.startswith(LOG_ONLY_MARK)
        if log_only_line:
            body = body[len(LOG_ONLY_MARK):]
        log = self._logs.get(rank)
        if log is None:
            log = self._logs[rank] = open(self.rank_log_path(rank), "a", encoding="utf-8")
        log.write(body + "\n")
        log.flush()
        self.last_output[rank] = now
        if log_only_line:
            return None, None
        end = parse_ended(body)
        if end:
            ended = RankEnd(end.rank, end.exit_code, end.signal_name, now)
            self.ends.append(ended)
            return (True if ended.failed else None), None
        start = parse_started(body)
        if start:
            self.rank_pids[start.rank] = start.pid
            self.rank_hosts[start.rank] = start.host
            return None, None
        if not self._note_stall_report(rank, body, now) and not _HOROVOD_LOG.match(body):
            self.last_progress[rank] = now
        if rank not in self.first_error_at and ERROR_LINE.search(body):
            self.first_error_at[rank] = now
        self._tails.setdefault(rank, deque(maxlen=TAIL_LINES)).append(body)
        return False, None

    def _note_stall_report(self, rank: int, body: str, now: float) -> bool:
        """Follow Horovod's multi-line stall warning; True while the line belongs to one."""
        if body.strip() == _MISSING_HEADER:
            self._in_missing_block[rank] = {}
            return True
        block = self._in_missing_block.get(rank)
        if block is None:
            return False
        missing = _MISSING_LINE.match(body.strip())
        if missing:
            block[int(missing.group(1))] = missing.group(2)
            self.stall_reports.append(StallReport(rank, dict(block), now))
            return True
        del self._in_missing_block[rank]
        return body.startswith("One or more rank")  # the "will shut down" trailer

    def _log_launcher(self, line: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        self._launcher_log.write(f"{stamp}Z {line}\n")
        self._launcher_log.flush()

    def log(self, message: str) -> None:
        """A line for launcher.log only (what was started, how it ended)."""
        with self._lock:
            self._log_launcher(message)

    def note(self, message: str) -> None:
        """A line from hvdjob itself: shown and kept in launcher.log."""
        with self._lock:
            self._log_launcher(message)
            self._view.message(message)

    def tail(self, rank: int, lines: int = 10) -> List[str]:
        with self._lock:
            return list(self._tails.get(rank, ()))[-lines:]

    def latest_stall_report(self, since: float) -> Optional[StallReport]:
        with self._lock:
            recent = [r for r in self.stall_reports if r.at >= since]
        return recent[-1] if recent else None

    def failure_verdict(self) -> Optional[Verdict]:
        """The failure that came first and the ones that followed from it (see blame.py)."""
        with self._lock:
            failed = [e for e in self.ends if e.failed]
            if any(e.checkpointed for e in self.ends):
                failed = [e for e in failed if e.signal_name not in _STOP_SIGNALS]
            tails = {r: list(t) for r, t in self._tails.items()}
            first_errors = dict(self.first_error_at)
        return rank_failures(failed, lambda r: tails.get(r, ()), first_errors)

    def first_failure(self) -> Optional[RankEnd]:
        verdict = self.failure_verdict()
        return verdict.first if verdict else None

    def is_consequence(self, end: RankEnd) -> bool:
        """The rank's last lines show it failed because a peer did (Horovod shut down, peer lost)."""
        return consequence_of_peer(self.tail(end.rank, TAIL_LINES)) is not None

    def checkpointed_stop(self) -> bool:
        """Ranks stopped after saving a checkpoint, and none failed otherwise."""
        with self._lock:
            stopped = any(e.checkpointed for e in self.ends)
        return stopped and self.first_failure() is None

    def close(self) -> None:
        with self._lock:
            self._view.close()
            for log in self._logs.values():
                log.close()
            self._launcher_log.close()


def pump(stream: IO[bytes], router: OutputRouter) -> None:
    """Reader-thread body: forward every line of one launcher process to the router."""
    for line in iter(stream.readline, b""):
        router.feed(line)
    stream.close()
