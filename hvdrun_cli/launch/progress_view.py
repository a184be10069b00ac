"""The launcher's view of how far the whole job is: one live bar on a terminal, a plain line elsewhere.

It reads nothing but the rank lines the output router already sees (as a router observer): the
progress marks every rank prints (``hvdjob: at step N``; rank 0's carry the job's numbers:
``hvdjob: at step 40 total=100 epoch=1/3 loss=0.41 accuracy=0.9 samples_per_sec=3200``, from managed
training and from scripts through :func:`hvdrun_cli.adapters.report_progress`) and the supervisors'
start and end lines (ranks alive). On a TTY the bar is
drawn by ``rich`` and rank output scrolls above it; when output is not a terminal (CI logs, a pipe),
one plain ``hvdjob: progress ...`` line is printed every N seconds, only when something moved.
"""
from __future__ import annotations

import re
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, Mapping, Optional, Set, TextIO, Tuple

from hvdrun_cli.contract import parse_ended, parse_progress_fields, parse_started

_EPOCH = re.compile(r"^(\d+)/(\d+)$")
RATE_WINDOW_S = 60.0  # steps/s (for the ETA) is measured over the last minute of progress
MIN_RATE_SPAN_S = 2.0  # and only once progress has been seen over at least this long
DEFAULT_PLAIN_EVERY_S = 30.0


@dataclass(frozen=True)
class Snapshot:
    """The job's progress at one moment, as the bar and the plain line show it."""

    step: Optional[int] = None
    total: Optional[int] = None
    epoch: Optional[Tuple[int, int]] = None
    loss: Optional[float] = None
    accuracy: Optional[float] = None
    samples_per_sec: Optional[float] = None
    eta_s: Optional[float] = None
    alive: int = 0
    ranks: int = 0

    @property
    def percent(self) -> Optional[float]:
        if self.step is None or not self.total:
            return None
        return min(100.0, 100.0 * self.step / self.total)

    def describe(self) -> str:
        """``step 40/100 (40%) ETA 0:12 3,200 samples/s loss 0.4100 2/2 ranks alive``."""
        parts = []
        if self.step is not None:
            parts.append(f"step {self.step}/{self.total}" if self.total else f"step {self.step}")
        if self.percent is not None:
            parts.append(f"({self.percent:.0f}%)")
        if self.epoch:
            parts.append(f"epoch {self.epoch[0]}/{self.epoch[1]}")
        if self.eta_s is not None:
            parts.append(f"ETA {format_duration(self.eta_s)}")
        if self.samples_per_sec is not None:
            parts.append(f"{self.samples_per_sec:,.0f} samples/s")
        if self.loss is not None:
            parts.append(f"loss {self.loss:.4f}")
        parts.append(f"{self.alive}/{self.ranks} ranks alive")
        return " ".join(parts)


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _maybe(kind: Callable[[str], Any], text: Optional[str]) -> Any:
    try:
        return kind(text) if text is not None else None
    except ValueError:
        return None


class ProgressState:
    """Folds rank lines into the job's progress; thread-safe, with the clock passed in for tests."""

    def __init__(self, np: Optional[int] = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._np = np
        self._clock = clock
        self._lock = threading.Lock()
        self._started: Set[int] = set()
        self._alive: Set[int] = set()
        self._ended: Set[int] = set()
        self._rank_steps: Dict[int, int] = {}
        self._step: Optional[int] = None
        self._total: Optional[int] = None
        self._epoch: Optional[Tuple[int, int]] = None
        self._loss: Optional[float] = None
        self._accuracy: Optional[float] = None
        self._rate: Optional[float] = None
        self._history: Deque[Tuple[float, int]] = deque()
        self.changes = 0  # bumped by every mark that moved the job (the plain printer's cue)

    def observe(self, rank: int, text: str) -> None:
        """A router observer: one rank line (bookkeeping lines included)."""
        with self._lock:
            self._observe(rank, text, self._clock())

    def _observe(self, rank: int, text: str, now: float) -> None:
        started = parse_started(text)
        if started:
            if self._ended:  # a restart: its ranks resume from a checkpoint, the rate starts over
                self._ended.clear()
                self._rank_steps.clear()
                self._history.clear()
                self._step = None
            self._started.add(started.rank)
            self._alive.add(started.rank)
            return
        ended = parse_ended(text)
        if ended:
            self._alive.discard(ended.rank)
            self._ended.add(ended.rank)
            return
        mark = parse_progress_fields(text)
        if mark:
            self._observe_mark(rank, mark[0], mark[1], now)

    def observe_mark(self, rank: int, step: int, fields: Mapping[str, str]) -> None:
        """One progress mark, already parsed (a progress observer of the router)."""
        with self._lock:
            self._observe_mark(rank, step, fields, self._clock())

    def _observe_mark(self, rank: int, step: int, fields: Mapping[str, str], now: float) -> None:
        if rank == 0 and fields:
            self._note_fields(fields)
        self._at_step(rank, step, now)

    def _note_fields(self, fields: Mapping[str, str]) -> None:
        """rank 0's numbers; a value that does not parse is left as it was."""
        total = _maybe(int, fields.get("total"))
        self._total = total if total else self._total
        epoch = _EPOCH.match(fields.get("epoch", ""))
        self._epoch = (int(epoch.group(1)), int(epoch.group(2))) if epoch else self._epoch
        for name, attr in (("loss", "_loss"), ("accuracy", "_accuracy"), ("samples_per_sec", "_rate")):
            value = _maybe(float, fields.get(name))
            if value is not None:
                setattr(self, attr, value)
        self.changes += 1

    def _at_step(self, rank: int, step: int, now: float) -> None:
        """The job is as far as its furthest rank (ranks report at different moments)."""
        self._rank_steps[rank] = step
        step = max(self._rank_steps.values())
        if self._step is not None and step <= self._step:
            return
        self._step = step
        self._history.append((now, step))
        while len(self._history) > 2 and now - self._history[0][0] > RATE_WINDOW_S:
            self._history.popleft()
        self.changes += 1

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(
                step=self._step, total=self._total, epoch=self._epoch, loss=self._loss,
                accuracy=self._accuracy, samples_per_sec=self._rate, eta_s=self._eta(),
                alive=len(self._alive), ranks=self._np or len(self._started))

    def _eta(self) -> Optional[float]:
        if self._step is None or not self._total or len(self._history) < 2:
            return None
        (t0, s0), (t1, s1) = self._history[0], self._history[-1]
        if t1 - t0 < MIN_RATE_SPAN_S or s1 <= s0:
            return None
        return max(0.0, (self._total - self._step) / ((s1 - s0) / (t1 - t0)))


class ProgressView:
    """A context manager around a run: draws the bar (TTY) or prints plain lines (not a TTY).

    On a TTY, entering redirects ``sys.stdout``/``sys.stderr`` through rich's console so everything
    printed meanwhile (rank output, hvdjob's notes) scrolls above the bar; pass ``sys.stdout`` as the
    router's terminal *inside* the ``with`` block.
    """

    def __init__(self, state: ProgressState, terminal: TextIO, tty: bool,
                 plain_every_s: float = DEFAULT_PLAIN_EVERY_S, force: bool = False) -> None:
        self.state = state
        self._terminal = terminal
        self._tty = tty
        self._force = force  # draw the bar even when the output is not a terminal (--progress bar)
        self._plain_every_s = plain_every_s
        self._live: Any = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._printed_changes = 0

    def observe(self, rank: int, text: str) -> None:
        self.state.observe(rank, text)

    def __enter__(self) -> "ProgressView":
        if self._tty:
            from rich.console import Console
            from rich.live import Live

            console = Console(file=self._terminal, highlight=False, emoji=False, markup=False,
                              force_terminal=True if self._force else None)
            self._live = Live(get_renderable=self._renderable, console=console, refresh_per_second=4,
                              transient=False, redirect_stdout=True, redirect_stderr=True)
            self._live.start()
        else:
            self._thread = threading.Thread(target=self._plain_loop, name="hvdjob-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.print_plain_line()  # the final state, if it moved since the last line

    # -- TTY --------------------------------------------------------------------------------------
    def _renderable(self) -> Any:
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        snap = self.state.snapshot()
        grid = Table.grid(padding=(0, 1))
        if snap.step is None:
            grid.add_row(Text("hvdjob", style="bold"), Text(f"starting: {snap.alive}/{snap.ranks} ranks alive"))
            return grid
        bar = ProgressBar(total=float(snap.total) if snap.total else None, completed=float(snap.step), width=30)
        grid.add_row(Text("hvdjob", style="bold"), bar, Text(snap.describe()))
        return grid

    # -- not a TTY --------------------------------------------------------------------------------
    def _plain_loop(self) -> None:
        while not self._stop.wait(self._plain_every_s):
            self.print_plain_line()

    def print_plain_line(self) -> None:
        """One ``hvdjob: progress ...`` line, when the job moved since the last one."""
        changes = self.state.changes
        snap = self.state.snapshot()
        if snap.step is None or changes == self._printed_changes:
            return
        self._printed_changes = changes
        try:
            self._terminal.write(f"hvdjob: progress {snap.describe()}\n")
            self._terminal.flush()
        except (BrokenPipeError, ValueError):
            pass


def progress_view(np: Optional[int], mode: str = "auto", plain_every_s: float = DEFAULT_PLAIN_EVERY_S,
                  terminal: Optional[TextIO] = None) -> Optional[ProgressView]:
    """The view ``hvdjob run`` uses: ``mode`` is auto (bar on a TTY, plain lines otherwise), bar,
    plain or off (None)."""
    if mode == "off":
        return None
    out = terminal if terminal is not None else sys.stdout
    tty = mode == "bar" or (mode == "auto" and _isatty(out))
    return ProgressView(ProgressState(np), out, tty=tty, plain_every_s=plain_every_s, force=mode == "bar")


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
