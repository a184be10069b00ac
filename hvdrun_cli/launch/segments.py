"""Split a rank's raw output into finished lines and live carriage-return updates.

Progress bars (tqdm and friends) redraw one line with ``\\r`` and end it with ``\\n`` only when
they finish. Reading whole lines would hold a bar back until then, so the rank supervisor feeds
whatever the rank wrote to :class:`CarriageSplitter` and passes on two kinds of output:

* a **line**: text ended by ``\\n`` (or ``\\r\\n``); for a redrawn line, its final visible state
  (the last non-empty ``\\r`` segment), which is what the rank logs keep;
* an **update**: the current state of a line being redrawn, sent at most every
  :data:`UPDATE_EVERY_S` per rank (the latest state always gets out, at the latest that much later).

Text without any ``\\r`` is passed on when its newline arrives, as before.
"""
from __future__ import annotations

import re
from typing import List, Optional, Tuple

UPDATE_EVERY_S = 0.1
MAX_LINE_BYTES = 1 << 20  # a "line" longer than this is passed on in pieces
_SEPARATOR = re.compile(rb"(\r\n|\r|\n)")

Piece = Tuple[bytes, bool]  # (text without terminator, is_update)


class CarriageSplitter:
    """Incremental splitter; not thread-safe (one per rank stream)."""

    def __init__(self, update_every_s: float = UPDATE_EVERY_S) -> None:
        self._every = update_every_s
        self._current = bytearray()  # text since the last \r or \n
        self._visible = b""  # last non-empty \r segment of the current line
        self._redrawn = False  # the current line has had a \r
        self._pending: Optional[bytes] = None  # update not sent yet (throttled)
        self._last_update = float("-inf")
        self._held_cr = False  # a chunk ended in \r: it may be the first half of \r\n

    def feed(self, data: bytes, now: float) -> List[Piece]:
        out: List[Piece] = []
        if self._held_cr:
            self._held_cr = False
            if data.startswith(b"\n"):
                self._newline(out)
                data = data[1:]
            else:
                self._carriage_return()
        if data.endswith(b"\r"):
            self._held_cr, data = True, data[:-1]
        for token in _SEPARATOR.split(data):
            if not token:
                continue
            if token in (b"\n", b"\r\n"):
                self._newline(out)
            elif token == b"\r":
                self._carriage_return()
            else:
                self._current += token
                if self._redrawn:
                    self._pending = bytes(self._current)
                if len(self._current) > MAX_LINE_BYTES:
                    self._newline(out)
        if self._held_cr and self._current:
            self._visible, self._redrawn = bytes(self._current), True
            self._pending = self._visible
        return out + self.tick(now)

    def tick(self, now: float) -> List[Piece]:
        """The throttled update, once it is due."""
        if self._pending is None or now - self._last_update < self._every:
            return []
        update, self._pending, self._last_update = self._pending, None, now
        return [(update, True)]

    def due_in(self, now: float) -> Optional[float]:
        """Seconds until :meth:`tick` has something to send (None: nothing pending)."""
        if self._pending is None:
            return None
        return max(0.0, self._every - (now - self._last_update))

    def close(self) -> List[Piece]:
        """End of the stream: the unfinished line, if any, as a line."""
        out: List[Piece] = []
        self._held_cr = False
        if self._current or self._visible:
            self._newline(out)
        return out

    def _carriage_return(self) -> None:
        if self._current:
            self._visible = bytes(self._current)
            if not self._redrawn:
                self._pending = self._visible  # first draw of a bar written as "text\r"
        self._redrawn = True
        self._current = bytearray()

    def _newline(self, out: List[Piece]) -> None:
        out.append((bytes(self._current) or self._visible, False))
        self._current, self._visible, self._redrawn, self._pending = bytearray(), b"", False, None
