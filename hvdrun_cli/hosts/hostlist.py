"""Slurm hostlist expressions (``node[001-004,007],gpu-a[1-2]``) and task-count lists.

Follows Slurm's own expansion (``scontrol show hostnames``, checked by an oracle test):
zero padding comes from the low end of a range (``n[08-11]`` -> n08..n11), names may hold several
bracket groups (``rack[1-2]-node[01-02]``) expanded in Slurm's order, and, as in Slurm, nothing may
follow the last ``]`` of a name.  Stricter than Slurm on purpose: an open range (``n[1-]``), a
stray ``]`` or an unclosed ``[`` is an error here instead of being guessed at.
"""
from __future__ import annotations

import re
from typing import List, Optional, Sequence, Tuple, Union

from hvdrun_cli.errors import HostfileError, Problem
from hvdrun_cli.spec import limits

# Guards against expressions like n[0-999999999] eating memory; far above any real allocation.
MAX_HOSTS = limits.MAX_HOSTS

_LITERAL = re.compile(r"[A-Za-z0-9._-]*")
_RANGE = re.compile(r"([0-9]+)(?:-([0-9]+))?")
_TASKS = re.compile(r"([0-9]+)(?:\(x([0-9]+)\))?")

# One number range inside brackets: (low, high, zero-padded width).
_Range = Tuple[int, int, int]
# A name is literals and bracket groups in order: "rack", [(1, 2, 1)], "-node", [(1, 2, 2)].
_Part = Union[str, List[_Range]]


def _fail(message: str, origin: Optional[str], got: str) -> HostfileError:
    return HostfileError(Problem(message, key=origin, got=_short(got)))


def _short(text: str, width: int = 80) -> str:
    """A value to quote in a message: a multi-MB variable is not printed whole."""
    return text if len(text) <= width else text[:width] + "..."


def _split_names(text: str, origin: Optional[str]) -> List[str]:
    """Split at commas and whitespace outside brackets; Slurm skips empty pieces."""
    names: List[str] = []
    current: List[str] = []
    in_brackets = False
    for char in text:
        if char == "[":
            if in_brackets:
                raise _fail("nested '[' in host list", origin, text)
            in_brackets = True
        elif char == "]":
            if not in_brackets:
                raise _fail("']' without a matching '[' in host list", origin, text)
            in_brackets = False
        elif not in_brackets and (char == "," or char.isspace()):
            if current:
                names.append("".join(current))
            current = []
            continue
        current.append(char)
    if in_brackets:
        raise _fail("'[' without a matching ']' in host list", origin, text)
    if current:
        names.append("".join(current))
    return names


def _parse_ranges(body: str, origin: Optional[str], name: str) -> List[_Range]:
    ranges: List[_Range] = []
    for item in body.split(","):
        match = _RANGE.fullmatch(item)
        if not match:
            raise _fail(f"bad range {item!r} in brackets; expected N or N-M", origin, name)
        low_text, high_text = match.group(1), match.group(2)
        if max(len(low_text), len(high_text or "")) > limits.MAX_COUNT_DIGITS:
            raise _fail(f"number in range {_short(item)!r} has more than {limits.MAX_COUNT_DIGITS} digits",
                        origin, _short(name))
        low = int(low_text)
        high = int(high_text) if high_text is not None else low
        if high < low:
            raise _fail(f"reversed range {item!r}", origin, name)
        ranges.append((low, high, len(low_text)))
    return ranges


def _parse_name(name: str, origin: Optional[str]) -> List[_Part]:
    """Literals and bracket groups of one name (brackets already checked to pair up)."""
    parts: List[_Part] = []
    rest = name
    while rest:
        literal, bracket, rest = rest.partition("[")
        if not _LITERAL.fullmatch(literal):
            raise _fail(f"invalid characters in host name {literal!r}", origin, name)
        if literal:
            parts.append(literal)
        if bracket:
            body, _, rest = rest.partition("]")
            parts.append(_parse_ranges(body, origin, name))
    if isinstance(parts[-1], str) and len(parts) > 1:
        raise _fail("text after the last ']' is not allowed in a Slurm host list", origin, name)
    return parts


def _count(parts: Sequence[_Part]) -> int:
    total = 1
    for part in parts:
        if isinstance(part, list):
            total *= sum(high - low + 1 for low, high, _ in part)
    return total


def _numbers(group: List[_Range]) -> List[str]:
    return [f"{n:0{width}d}" for low, high, width in group for n in range(low, high + 1)]


def _expand(prefix: List[_Part], last: List[_Range], out: List[str]) -> None:
    """Slurm's order: the last group varies fastest, then the first, second, ... up to the
    second-to-last, which varies slowest (hostlist.c ``_push_range_list`` recursion)."""
    groups = [i for i, part in enumerate(prefix) if isinstance(part, list)]
    if not groups:
        head = "".join(prefix)  # type: ignore[arg-type]
        out.extend(head + number for number in _numbers(last))
        return
    i = groups[-1]
    for number in _numbers(prefix[i]):  # type: ignore[arg-type]
        _expand(prefix[:i] + [number] + prefix[i + 1:], last, out)


def expand_nodelist(text: str, origin: Optional[str] = None) -> List[str]:
    """Host names of a Slurm hostlist expression, in Slurm's order (duplicates kept).

    ``origin`` (e.g. ``SLURM_JOB_NODELIST``) becomes the key of any error.
    """
    names: List[str] = []
    for name in _split_names(text, origin):
        parts = _parse_name(name, origin)
        if len(names) + _count(parts) > MAX_HOSTS:
            raise _fail(f"host list expands to more than {MAX_HOSTS} hosts", origin, text)
        if isinstance(parts[-1], str):
            names.append("".join(parts))  # type: ignore[arg-type]
        else:
            _expand(parts[:-1], parts[-1], names)
    if not names:
        raise _fail("empty host list", origin, text)
    return names


def parse_tasks_per_node(text: str, origin: Optional[str] = None) -> List[int]:
    """Per-node task counts from Slurm's compressed form: ``"2(x3),1"`` -> ``[2, 2, 2, 1]``."""
    counts: List[int] = []
    for item in text.split(","):
        match = _TASKS.fullmatch(item.strip())
        if not match:
            raise _fail(f"bad task count {_short(item)!r}; expected N or N(xM)", origin, text)
        if max(len(match.group(1)), len(match.group(2) or "")) > limits.MAX_COUNT_DIGITS:
            raise _fail(f"task count {_short(item)!r} has more than {limits.MAX_COUNT_DIGITS} digits", origin, text)
        count, repeat = int(match.group(1)), int(match.group(2) or 1)
        if count < 1 or repeat < 1:
            raise _fail(f"task counts and repeats must be positive (got {item!r})", origin, text)
        if count > limits.MAX_SLOTS_PER_HOST:
            raise _fail(f"{count} tasks on one node is more than hvdjob's limit of {limits.MAX_SLOTS_PER_HOST}",
                        origin, text)
        if len(counts) + repeat > limits.MAX_HOSTS:
            raise _fail(limits.too_many(len(counts) + repeat, limits.MAX_HOSTS, "nodes"), origin, text)
        counts.extend([count] * repeat)
    return counts
