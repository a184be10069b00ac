"""What hvdjob shows on its terminal while ranks run (the logs keep everything regardless).

One object decides, line by line: which ranks are shown (``--ranks 0,3-5``); whether identical
lines from several ranks are folded (``[0-7] loading data``, see fold.py); which start-up noise
is hidden (see noise.py); and how a rank's live carriage-return updates (progress bars) are drawn.

Live updates: on a terminal, the latest update is drawn on the last line and redrawn in place
(other lines are printed above it); when the rank finishes that line, its final state replaces it.
When the output is not a terminal (a file, a CI log), each update is written followed by ``\\r``,
the way the rank itself would have written it, so ``cat`` shows the last state and the progress is
in the file as it happens.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import FrozenSet, Iterable, Optional, TextIO, Tuple

from hvdrun_cli.launch.fold import FOLD_FROM_RANKS, Folder, rank_label
from hvdrun_cli.launch.noise import is_startup_noise

CLEAR_LINE = "\r\x1b[K"
# Never folded or delayed: a user must see every rank's own error as it comes.
ERROR_LINE = re.compile(r"Traceback \(most recent call last\)|\b\w*(?:Error|Exception)\b|^error:|\bFATAL\b|\bfatal\b")


@dataclass(frozen=True)
class TerminalOptions:
    """The user's choices for the terminal view (``hvdjob run --ranks/--fold/--no-fold/--quiet``)."""

    ranks: Optional[FrozenSet[int]] = None  # None: every rank
    fold: Optional[bool] = None  # None: on when FOLD_FROM_RANKS or more ranks are shown
    quiet: bool = False


def shown_ranks(options: TerminalOptions, all_ranks: Iterable[int]) -> FrozenSet[int]:
    ranks = frozenset(all_ranks)
    return ranks if options.ranks is None else ranks & options.ranks


class TerminalView:
    """Not thread-safe: the output router calls it under its lock."""

    def __init__(self, terminal: TextIO, options: TerminalOptions = TerminalOptions(),
                 all_ranks: Iterable[int] = ()) -> None:
        self._out = terminal
        self._options = options
        ranks = frozenset(all_ranks)
        self._expected = shown_ranks(options, ranks) if ranks else None
        fold = options.fold
        if fold is None:
            count = len(self._expected) if self._expected is not None else 0
            fold = count >= FOLD_FROM_RANKS
        self._folder: Optional[Folder] = Folder(self._expected) if fold else None
        try:
            self._tty = bool(terminal.isatty())
        except (AttributeError, ValueError):
            self._tty = False
        self._live: Optional[Tuple[int, str]] = None  # (rank, drawn text) of the update on screen

    def wants(self, rank: int) -> bool:
        return not self._options.quiet and (self._options.ranks is None or rank in self._options.ranks)

    # -- input ------------------------------------------------------------------------------------
    def rank_line(self, rank: int, text: str, always: bool = False, now: Optional[float] = None) -> None:
        """A finished line of one rank; ``always``: an end or failure line, never folded."""
        if not self.wants(rank) or (not always and is_startup_noise(text)):
            return
        now = time.monotonic() if now is None else now
        if self._folder is None or always or ERROR_LINE.search(text):
            self._flush_folder()
            self._write(f"[{rank}] {text}", rank)
            return
        for ranks, folded in self._folder.add(rank, text, now):
            self._write(f"{rank_label(ranks)} {folded}", ranks[0] if len(ranks) == 1 else None)

    def rank_update(self, rank: int, text: str) -> None:
        """The current state of a line the rank is redrawing (a progress bar)."""
        if not self.wants(rank):
            return
        drawn = f"[{rank}] {text}"
        if self._tty:
            self._emit(CLEAR_LINE + drawn)
        else:
            if self._live is not None and self._live[0] != rank:
                self._emit("\n")
            self._emit(drawn + "\r")
        self._live = (rank, drawn)

    def message(self, text: str) -> None:
        """A line of hvdjob's own, or launcher output that names no rank."""
        if self._options.quiet:
            return
        self._flush_folder()
        self._write(text, None)

    def tick(self, now: Optional[float] = None) -> None:
        """Show folded lines whose window has passed (called every poll)."""
        if self._folder is not None:
            for ranks, folded in self._folder.due(time.monotonic() if now is None else now):
                self._write(f"{rank_label(ranks)} {folded}", ranks[0] if len(ranks) == 1 else None)

    def close(self) -> None:
        self._flush_folder()
        if self._live is not None:
            self._emit("\n")
            self._live = None

    # -- output -----------------------------------------------------------------------------------
    def _flush_folder(self) -> None:
        if self._folder is not None:
            for ranks, folded in self._folder.flush():
                self._write(f"{rank_label(ranks)} {folded}", ranks[0] if len(ranks) == 1 else None)

    def _write(self, line: str, rank: Optional[int]) -> None:
        """A finished line; a live update on screen is kept below it (or replaced, for its own rank)."""
        live = self._live
        if live is None:
            self._emit(line + "\n")
            return
        if self._tty:
            self._emit(CLEAR_LINE + line + "\n")
            if live[0] == rank:
                self._live = None
            else:
                self._emit(live[1])
        else:
            self._emit(("" if live[0] == rank else "\n") + line + "\n")
            self._live = None

    def _emit(self, text: str) -> None:
        try:
            self._out.write(text)
            self._out.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass
