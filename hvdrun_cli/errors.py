"""Exception types shared by the launcher side.

The CLI turns :class:`UserInputError` into exit code 2 and one line per problem (never a traceback);
every other :class:`HvdjobError` exits 1 with its message. Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence, Tuple

_MISSING = object()


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a user's input, located as precisely as we can.

    Rendered as ``job.yaml:14: train.lr: must be a positive number (got 'fast')``; parts that are
    unknown are left out (a flag has no file, a whole-file problem has no line).
    """

    message: str
    file: Optional[str] = None
    line: Optional[int] = None
    key: Optional[str] = None
    got: Any = _MISSING
    column: Optional[int] = None

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        key = f"{_one_line(self.key)}: " if self.key else ""
        got = "" if self.got is _MISSING else f" (got {_short(repr(self.got))})"
        return f"{_one_line(where)}{key}{_one_line(self.message)}{got}"


_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F)}


def _one_line(text: str) -> str:
    """Control characters (a key with a line break in it) shown escaped: one problem, one line."""
    return text.translate(_CONTROL) if any(ord(c) < 0x20 or c == "\x7f" for c in text) else text


def _short(text: str, width: int = 200) -> str:
    """A multi-megabyte value is not printed whole."""
    return text if len(text) <= width else f"{text[:width]}... ({len(text):,} characters)"


class HvdjobError(Exception):
    """A failure the user should see as one clean message."""

    exit_code = 1


class UserInputError(HvdjobError):
    """Bad input: a spec, a hostfile, a flag or a missing file. Exit code 2."""

    exit_code = 2

    def __init__(self, problems: "Iterable[Problem] | Problem | str"):
        if isinstance(problems, (Problem, str)):
            problems = [problems]
        self.problems: Tuple[Problem, ...] = tuple(
            p if isinstance(p, Problem) else Problem(str(p)) for p in problems
        )
        super().__init__("\n".join(str(p) for p in self.problems))


class SpecError(UserInputError):
    """The job spec is invalid (all problems found, not just the first)."""


class HostfileError(UserInputError):
    """A hostfile, host list or scheduler allocation could not be understood."""


class LayoutError(UserInputError):
    """The requested ranks do not fit on the given hosts."""


class LaunchError(HvdjobError):
    """The launch cannot proceed: a required tool is missing, a host is down, ..."""


class JobFailed(HvdjobError):
    """The job ran and failed; ``exit_code`` is the job's own."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def problems_text(problems: Sequence[Problem]) -> str:
    return "\n".join(str(p) for p in problems)
