"""Live rank output: demultiplex ``[RANK] text`` lines to the terminal and to per-rank log files.

Every rank's output reaches the launching machine through its launcher (our own pipes, horovodrun,
mpirun or srun), already labelled by the rank supervisor. This module keeps the logs on the
launching machine, so they exist even when ranks ran on hosts without a shared filesystem.
"""
from __future__ import annotations

import os
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import IO, Callable, Deque, Dict, List, Optional, TextIO

# horovodrun labels lines itself ("[1]<stdout>:"); ours follow it.
_HOROVODRUN_PREFIX = re.compile(r"^\[\d+\]<std(?:out|err)>:")
_RANK_LINE = re.compile(r"^\[(\d+)\] ?(.*)$", re.DOTALL)
_END_LINE = re.compile(r"^hvdjob: rank (\d+) (?:exited with code (\d+)|was killed by (\S+))")
_START_LINE = re.compile(r"^hvdjob: rank (\d+) started \(pid (\d+) on (\S+)\)")
# Progress marks: managed ranks print one every few seconds of training (all ranks, not only rank 0),
# so the watchdog sees progress even when progress lines are minutes apart. Hidden from the terminal.
_PROGRESS_MARK = re.compile(r"^hvdjob: at step (\d+)((?: [A-Za-z_][\w.]*=\S*)*)$")
# A rank line that starts with this goes to the rank log only (e.g. hvdjob's own traceback frames).
LOG_ONLY_MARK = "hvdjob-log-only: "
# Horovod's own log lines ("[2026-01-01 10:00:00.123456: W .../stall_inspector.cc:107] ..."): a hung
# job keeps printing them, so they are output but never progress.
_HOROVOD_LOG = re.compile(r"^\[\d{4}-\d\d-\d\d [\d:. ]+: [TDIWEF] ")
# Horovod's stall inspector names the ranks a collective waits for, one per line after this header:
# "1: [allreduce.grad_0, ...]" ("1!: [...]" once it is about to shut down).
_MISSING_HEADER = "Missing ranks:"
_MISSING_LINE = re.compile(r"^(\d+)!?: \[(.*)\]$")
TAIL_LINES = 20
EXIT_CHECKPOINTED = 75  # a rank saved a checkpoint and stopped on request; resume continues
# Once ranks stop with a checkpoint, launchers (srun --kill-on-bad-exit, mpirun) may terminate the
# slower peers: such deaths are part of the orderly stop, not failures.
_STOP_SIGNALS = ("SIGTERM", "SIGKILL", "SIGINT")


def progress_mark(step: int, **fields: object) -> str:
    """The line a rank prints to tell the launcher it is still training (``key=value`` extras optional)."""
    extra = "".join(f" {k}={v}" for k, v in fields.items())
    return f"hvdjob: at step {step}{extra}"


def log_only(line: str) -> str:
    """``line`` marked for the rank log only: the launcher keeps it there and does not show it."""
    return LOG_ONLY_MARK + line


# Called with (rank, text) for every rank line the router records, bookkeeping lines included
# (progress marks, start and end lines), under the router's lock: keep it quick.
LineObserver = Callable[[int, str], None]


@dataclass(frozen=True)
class StallReport:
    """Horovod's stall inspector, seen on one rank: ranks the others wait for, with the tensors."""

    reporter: int
    missing: Dict[int, str]
    at: float


@dataclass(frozen=True)
class RankEnd:
    rank: int
    exit_code: Optional[int]  # None when killed by a signal
    signal_name: Optional[str]
    at: float

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

    def __init__(self, run_dir: str, terminal: TextIO, quiet: bool = False):
        self._run_dir = run_dir
        self._observers: List[LineObserver] = []
        self._terminal = terminal
        self._quiet = quiet
        self._lock = threading.Lock()
        self._logs: Dict[int, IO[str]] = {}
        self._launcher_log: IO[str] = open(os.path.join(run_dir, "launcher.log"), "a", encoding="utf-8")
        self._tails: Dict[int, Deque[str]] = {}
        self.ends: List[RankEnd] = []
        self.rank_pids: Dict[int, int] = {}
        self.rank_hosts: Dict[int, str] = {}
        self.last_output: Dict[int, float] = {}
        self.last_progress: Dict[int, float] = {}  # output that shows work (not bookkeeping or Horovod logs)
        self.progress_step: Dict[int, int] = {}  # from progress marks
        self.stall_reports: List[StallReport] = []
        self._in_missing_block: Dict[int, Dict[int, str]] = {}

    def rank_log_path(self, rank: int) -> str:
        return os.path.join(self._run_dir, f"rank.{rank}.log")

    def feed(self, raw: bytes) -> None:
        text = raw.decode("utf-8", errors="replace").rstrip("\n")
        text = _HOROVODRUN_PREFIX.sub("", text, count=1)
        match = _RANK_LINE.match(text)
        with self._lock:
            if not match:
                self._launcher_log.write(text + "\n")
                self._launcher_log.flush()
                self._show(text)
                return
            rank, body = int(match.group(1)), match.group(2)
            if self._record(rank, body):
                self._show(f"[{rank}] {body}")
            for observer in self._observers:
                observer(rank, body)

    def add_observer(self, observer: LineObserver) -> None:
        with self._lock:
            self._observers.append(observer)

    def _record(self, rank: int, body: str) -> bool:
        """Keep the line in the rank's log; False for bookkeeping lines not worth showing live."""
        now = time.monotonic()
        mark = _PROGRESS_MARK.match(body)
        if mark:
            self.progress_step[rank] = int(mark.group(1))
            self.last_progress[rank] = self.last_output[rank] = now
            return False
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
            return False
        end = _END_LINE.match(body)
        if end:
            code = int(end.group(2)) if end.group(2) is not None else None
            ended = RankEnd(int(end.group(1)), code, end.group(3), now)
            self.ends.append(ended)
            return ended.failed
        start = _START_LINE.match(body)
        if start:
            self.rank_pids[int(start.group(1))] = int(start.group(2))
            self.rank_hosts[int(start.group(1))] = start.group(3)
            return False
        if not self._note_stall_report(rank, body, now) and not _HOROVOD_LOG.match(body):
            self.last_progress[rank] = now
        self._tails.setdefault(rank, deque(maxlen=TAIL_LINES)).append(body)
        return True

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

    def _show(self, line: str) -> None:
        if self._quiet:
            return
        try:
            self._terminal.write(line + "\n")
            self._terminal.flush()
        except (BrokenPipeError, ValueError):
            pass

    def note(self, message: str) -> None:
        """A line from hvdjob itself: shown and kept in launcher.log."""
        with self._lock:
            self._launcher_log.write(message + "\n")
            self._launcher_log.flush()
            self._show(message)

    def tail(self, rank: int, lines: int = 10) -> List[str]:
        with self._lock:
            return list(self._tails.get(rank, ()))[-lines:]

    def latest_stall_report(self, since: float) -> Optional[StallReport]:
        with self._lock:
            recent = [r for r in self.stall_reports if r.at >= since]
        return recent[-1] if recent else None

    def first_failure(self) -> Optional[RankEnd]:
        with self._lock:
            failed = [e for e in self.ends if e.failed]
            if any(e.checkpointed for e in self.ends):
                failed = [e for e in failed if e.signal_name not in _STOP_SIGNALS]
        return min(failed, key=lambda e: e.at) if failed else None

    def checkpointed_stop(self) -> bool:
        """Ranks stopped after saving a checkpoint, and none failed otherwise."""
        with self._lock:
            stopped = any(e.checkpointed for e in self.ends)
        return stopped and self.first_failure() is None

    def close(self) -> None:
        with self._lock:
            for log in self._logs.values():
                log.close()
            self._launcher_log.close()


def pump(stream: IO[bytes], router: OutputRouter) -> None:
    """Reader-thread body: forward every line of one launcher process to the router."""
    for line in iter(stream.readline, b""):
        router.feed(line)
    stream.close()
