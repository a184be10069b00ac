"""Folding identical lines from many ranks into one: ``[0-7] loading data``.

With 8 or 64 ranks, most start-up and per-epoch lines are printed by every rank alike. A
:class:`Folder` holds each line for a short window; ranks printing the same text in that window
join it, and it is shown once with their ranks. A line is shown as soon as every rank on the
terminal has printed it, else when its window ends; lines come out in the order they were first
seen, so no rank's lines are reordered. Callers pass errors and end lines around the folder
(after :meth:`Folder.flush`), so those are never folded away or delayed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, FrozenSet, Iterable, List, Optional, Set, Tuple

FOLD_WINDOW_S = 2.0  # identical lines this far apart still fold (ranks on a busy machine drift)
FOLD_FROM_RANKS = 4  # folding is on by default for jobs with this many ranks on the terminal

Folded = Tuple[Tuple[int, ...], str]  # (ranks, text)


def rank_label(ranks: Iterable[int]) -> str:
    """``[0-3,6]`` for ranks 0, 1, 2, 3 and 6."""
    runs: List[List[int]] = []
    for r in sorted(set(ranks)):
        if runs and r == runs[-1][1] + 1:
            runs[-1][1] = r
        else:
            runs.append([r, r])
    return "[" + ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs) + "]"


@dataclass(eq=False)
class _Entry:
    text: str
    first_at: float
    ranks: Set[int] = field(default_factory=set)


class Folder:
    """Not thread-safe: the output router calls it under its lock."""

    def __init__(self, expected: Optional[FrozenSet[int]] = None, window_s: float = FOLD_WINDOW_S) -> None:
        self._expected = expected  # ranks that can print (a full entry is shown at once)
        self._window = window_s
        self._entries: List[_Entry] = []
        self._open: Dict[str, List[_Entry]] = {}

    def add(self, rank: int, text: str, now: float) -> List[Folded]:
        entry = next((e for e in self._open.get(text, ()) if rank not in e.ranks), None)
        if entry is None:
            entry = _Entry(text, now)
            self._entries.append(entry)
            self._open.setdefault(text, []).append(entry)
        entry.ranks.add(rank)
        return self.due(now)

    def due(self, now: float) -> List[Folded]:
        """Lines ready to show: from the oldest on, while each is complete or past its window."""
        out: List[Folded] = []
        while self._entries:
            head = self._entries[0]
            complete = self._expected is not None and head.ranks >= self._expected
            if not complete and now - head.first_at < self._window:
                break
            out.append(self._pop())
        return out

    def flush(self) -> List[Folded]:
        out: List[Folded] = []
        while self._entries:
            out.append(self._pop())
        return out

    def _pop(self) -> Folded:
        entry = self._entries.pop(0)
        same = self._open.get(entry.text, [])
        if entry in same:
            same.remove(entry)
        if not same:
            self._open.pop(entry.text, None)
        return tuple(sorted(entry.ranks)), entry.text


def parse_rank_selection(text: str) -> FrozenSet[int]:
    """``0,3-5`` -> {0, 3, 4, 5}; ValueError with a short reason for anything else."""
    ranks: Set[int] = set()
    for part in text.split(","):
        part = part.strip()
        low, sep, high = part.partition("-")
        if not low.isdigit() or (sep and not high.isdigit()):
            raise ValueError(f"{part!r} is not a rank or a range like 3-5")
        first, last = int(low), int(high) if sep else int(low)
        if last < first:
            raise ValueError(f"{part!r}: the range ends before it starts")
        if last - first > 1_000_000:
            raise ValueError(f"{part!r}: range too large")
        ranks.update(range(first, last + 1))
    return frozenset(ranks)
