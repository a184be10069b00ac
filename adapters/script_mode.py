"""Script mode: run the user's own Horovod script as if it were started with ``python script.py``.

The script calls ``hvd.init()`` itself; we only prepare what a plain ``python`` start would give it
(``sys.argv``, the script's directory on ``sys.path``, ``__name__ == "__main__"``) plus the Keras
alias TensorFlow scripts need. Its exit status (``sys.exit``) passes through unchanged.

When the script raises, the traceback shown starts at the script's own code: hvdjob's frames in
front of it (``<frozen runpy>``, this module) are marked for the rank log only, so the log keeps the
full traceback while the terminal shows what ``python script.py`` would. The rank exits with 1,
as Python does for an uncaught exception.
"""
from __future__ import annotations

import os
import runpy
import sys
import traceback
from typing import List, Optional, Sequence, Set, TextIO, Tuple

from hvdrun_cli.errors import Problem, UserInputError
from hvdrun_cli.contract import log_only

EXIT_UNCAUGHT = 1
_HERE = os.path.dirname(os.path.realpath(__file__))
_RUNPY = os.path.realpath(runpy.__file__)
_CAUSE = "The above exception was the direct cause of the following exception:"
_CONTEXT = "During handling of the above exception, another exception occurred:"


def run_script(script: str, args: Sequence[str]) -> None:
    """Execute ``script`` in this process with ``args``; SystemExit propagates, other errors exit 1."""
    if not os.path.isfile(script):
        raise UserInputError(Problem("script not found on this host", key="script", got=script))
    script = os.path.abspath(script)
    sys.argv = [script, *args]
    sys.path.insert(0, os.path.dirname(script))
    try:
        runpy.run_path(script, run_name="__main__")
    except Exception as exc:  # noqa: BLE001 - what Python's own handler would catch, minus Ctrl-C
        print_traceback(exc, sys.stderr)
        raise SystemExit(EXIT_UNCAUGHT) from None


def is_internal(filename: str) -> bool:
    """A frame of hvdjob's runner (the adapters package or runpy), not of the user's code."""
    if filename.startswith("<frozen "):
        return True
    path = os.path.realpath(filename)
    return path == _RUNPY or os.path.dirname(path) == _HERE


def traceback_lines(exc: BaseException, _seen: Optional[Set[int]] = None) -> List[Tuple[bool, str]]:
    """Python's traceback of ``exc`` (chained exceptions first) as ``(log_only, line)`` pairs.

    Leading hvdjob frames are log-only; the user's frames and everything after them are shown.
    When no frame is the user's (hvdjob itself failed), nothing is hidden.
    """
    seen = _seen if _seen is not None else set()
    seen.add(id(exc))
    lines: List[Tuple[bool, str]] = []
    cause, context = exc.__cause__, exc.__context__
    if cause is not None and id(cause) not in seen:
        lines += traceback_lines(cause, seen) + [(False, ""), (False, _CAUSE), (False, "")]
    elif context is not None and not exc.__suppress_context__ and id(context) not in seen:
        lines += traceback_lines(context, seen) + [(False, ""), (False, _CONTEXT), (False, "")]
    frames = traceback.extract_tb(exc.__traceback__)
    hidden = 0
    while hidden < len(frames) and is_internal(frames[hidden].filename):
        hidden += 1
    if hidden == len(frames):
        hidden = 0
    if frames:
        lines.append((False, "Traceback (most recent call last):"))
        for frame in frames[:hidden]:
            lines += [(True, line) for line in _split(traceback.StackSummary.from_list([frame]).format())]
        lines += [(False, line) for line in _split(traceback.StackSummary.from_list(frames[hidden:]).format())]
    lines += [(False, line) for line in _split(traceback.format_exception_only(type(exc), exc))]
    return lines


def _split(chunks: Sequence[str]) -> List[str]:
    return "".join(chunks).rstrip("\n").split("\n")


def print_traceback(exc: BaseException, stream: TextIO) -> None:
    """Print the traceback with hvdjob's leading frames marked for the rank log only."""
    sys.stdout.flush()  # rank output printed before the error stays before it
    for hidden, line in traceback_lines(exc):
        stream.write((log_only(line) if hidden else line) + "\n")
    stream.flush()
