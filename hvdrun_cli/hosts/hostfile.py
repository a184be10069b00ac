"""Hostfiles and host lists: the ways a user names the machines a job runs on.

One line per host in a hostfile, in any of the forms people already have::

    node1 slots=4          # Open MPI / DeepSpeed (max_slots=N accepted, must be >= slots)
    node2:4                # Horovod -H / discovery-script form
    node3                  # bare host: 1 slot
    node3                  # ... listed again bare: one more slot (MPI machinefile, $PBS_NODEFILE)

A host given a count (``slots=N`` or ``:N``) must be listed once: a second line for it is an error,
since adding or replacing the count would both be guesses. Repeated *bare* lines are Open MPI's
machinefile form and add one slot each. ``-H a:2,b`` and the spec's ``resources.hosts`` use the
``name`` / ``name:N`` form. Every problem in the input is reported at once, each with its file:line
(or flag/key); sizes are bounded by :mod:`hvdrun_cli.spec.limits` before anything is built.
"""
from __future__ import annotations

import difflib
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from hvdrun_cli.errors import HostfileError, Problem
from hvdrun_cli.hosts.model import Host, host_name_problem
from hvdrun_cli.spec import limits

_OPTIONS = ("max_slots", "slots")
_FORMS = "'host slots=N', 'host:N' or 'host'"

# (message, offending text) pairs; the caller knows where they came from and adds file/line/key.
_Issue = Tuple[str, str]


def _count(text: str, what: str, issues: List[_Issue]) -> Optional[int]:
    """A positive integer slot count up to the per-host limit, or None after recording why not."""
    if not (text.isascii() and text.isdigit() and int(text[: limits.MAX_COUNT_DIGITS + 1]) > 0):
        issues.append((f"{what} must be a positive integer", text))
        return None
    if len(text) > limits.MAX_COUNT_DIGITS or int(text) > limits.MAX_SLOTS_PER_HOST:
        issues.append((f"{what} must be at most {limits.MAX_SLOTS_PER_HOST} (hvdjob's limit for one host)",
                       text if len(text) <= 40 else text[:40] + "..."))
        return None
    return int(text)


def _option(token: str, seen: Dict[str, int], issues: List[_Issue]) -> None:
    """Read one ``key=value`` token of an MPI-style line into ``seen``."""
    key, _, value = token.partition("=")
    if key not in _OPTIONS:
        close = difflib.get_close_matches(key, _OPTIONS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        issues.append((f"unknown option {key!r}{hint} (valid: {', '.join(_OPTIONS)})", token))
        return
    if key in seen:
        issues.append((f"{key} given twice", token))
        return
    number = _count(value, key, issues)
    if number is not None:
        seen[key] = number


def _parse_line(text: str) -> Tuple[Optional[Host], bool, List[_Issue]]:
    """One hostfile line without its comment: (Host, whether it gave a count) or the reasons not."""
    issues: List[_Issue] = []
    first, *rest = text.split()
    if "=" in first:
        return None, False, [(f"expected a host name first; lines look like {_FORMS}", text)]
    name, colon, count = first.partition(":")
    slots = _count(count, "slot count", issues) if colon else None
    problem = host_name_problem(name)
    if problem:
        issues.append((problem, first))
    options: Dict[str, int] = {}
    for token in (t for t in rest if "=" in t):
        _option(token, options, issues)
    stray = [t for t in rest if "=" not in t]
    if stray:
        issues.append((f"unexpected text after the host name; expected {_FORMS}", " ".join(stray)))
    if colon and "slots" in options:
        issues.append(("slot count given twice: use 'host:N' or 'host slots=N', not both", text))
    counted = bool(colon or "slots" in options)
    slots = slots or options.get("slots") or 1
    max_slots = options.get("max_slots")
    if max_slots is not None and max_slots < slots:
        issues.append((f"max_slots ({max_slots}) is smaller than slots ({slots})", text))
    if issues:
        return None, counted, issues
    return Host(name, slots), counted, []


def _read_text(path: str) -> str:
    """The file's text (CRLF read as LF); refused unread past :data:`limits.MAX_HOSTFILE_BYTES`."""
    try:
        with open(path, encoding="utf-8-sig") as handle:
            text = handle.read(limits.MAX_HOSTFILE_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise HostfileError(Problem(f"cannot read hostfile: {reason}", file=path)) from None
    except UnicodeDecodeError:
        raise HostfileError(
            Problem("cannot read hostfile: not a UTF-8 text file", file=path)) from None
    if len(text) > limits.MAX_HOSTFILE_BYTES:
        raise HostfileError(Problem(f"has more than {limits.MAX_HOSTFILE_BYTES:,} characters,"
                                    " hvdjob's limit for a hostfile", file=path))
    return text


def _issue_problem(issue: _Issue, **where: Any) -> Problem:
    message, got = issue
    return Problem(message, got=got, **where)


_last_parsed: Dict[Tuple[str, int, int, int, int], Tuple[Host, ...]] = {}


def parse_hostfile(path: str) -> Tuple[Host, ...]:
    """Hosts listed in ``path``, in file order; HostfileError lists every bad line.

    The file is read once per process while it is unchanged (same inode, size and mtime): validation
    and the plan both read it, and a 20,000-host file takes a good part of a second to check."""
    try:
        st = os.stat(path)
        key: Optional[Tuple[str, int, int, int, int]] = (os.path.abspath(path), st.st_ino, st.st_size,
                                                         st.st_mtime_ns, st.st_ctime_ns)
    except OSError:
        key = None  # _read_text reports it, with the file named
    if key is not None and key in _last_parsed:
        return _last_parsed[key]
    hosts = _parse_hostfile(path)
    if key is not None:
        _last_parsed.clear()
        _last_parsed[key] = hosts
    return hosts


def _parse_hostfile(path: str) -> Tuple[Host, ...]:
    text = _read_text(path)
    slots: Dict[str, int] = {}  # folded name -> slots so far
    names: Dict[str, str] = {}  # folded name -> the first spelling
    first_line: Dict[str, int] = {}
    counted: Dict[str, bool] = {}  # folded name -> whether its first line gave a count
    problems: List[Problem] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if len(problems) >= limits.MAX_PROBLEMS:
            problems.append(Problem(f"more problems after line {number} not shown", file=path))
            break
        host, has_count, issues = _parse_line(line)
        problems.extend(_issue_problem(i, file=path, line=number) for i in issues)
        if host is None:
            continue
        # Host names are case-insensitive (DNS): 'Node1' and 'node1' are the same machine.
        folded = host.name.lower()
        if folded in first_line:
            if has_count or counted[folded]:
                problems.append(Problem(
                    f"duplicate host {host.name!r} (first listed at line {first_line[folded]}); a host"
                    " with a slot count is listed once (only bare lines repeat, one slot each)",
                    file=path, line=number))
            elif slots[folded] >= limits.MAX_SLOTS_PER_HOST:
                problems.append(Problem(
                    limits.too_many(slots[folded] + 1, limits.MAX_SLOTS_PER_HOST, f"slots for {host.name!r}"),
                    file=path, line=number))
            else:
                slots[folded] += 1  # machinefile form: one line per slot
            continue
        if len(first_line) >= limits.MAX_HOSTS:
            problems.append(Problem(limits.too_many(len(first_line) + 1, limits.MAX_HOSTS, "hosts"),
                                    file=path, line=number))
            break
        first_line[folded], counted[folded] = number, has_count
        names[folded], slots[folded] = host.name, host.slots
    if not slots and not problems:
        problems.append(Problem(f"no hosts found; expected lines like {_FORMS}", file=path))
    if problems:
        raise HostfileError(problems)
    return tuple(Host(names[folded], count) for folded, count in slots.items())


def _parse_entry(piece: str, default_slots: int) -> Tuple[Optional[Host], List[_Issue]]:
    """``name`` or ``name:N`` from a host list."""
    issues: List[_Issue] = []
    name, colon, count = piece.partition(":")
    slots = _count(count, "slot count", issues) if colon else default_slots
    problem = host_name_problem(name)
    if problem:
        issues.append((f"{problem}; expected 'name' or 'name:N'", piece))
    if issues or slots is None:  # slots is None only with an issue; the check is for type checkers
        return None, issues
    return Host(name, slots), []


def parse_host_list(
    entries: Sequence[str],
    origin: str,
    default_slots: Optional[int] = None,
    *,
    file: Optional[str] = None,
    lines: Optional[Sequence[Optional[int]]] = None,
) -> Tuple[Host, ...]:
    """Hosts from ``-H a:2,b`` pieces or the spec's ``resources.hosts`` entries.

    Each entry may itself hold a comma-separated list (the raw ``-H`` value).  Problems are keyed
    by ``origin`` (``-H``) or ``origin[i]`` (``resources.hosts[1]``) when there are several
    entries; a spec loader passes ``file`` and per-entry ``lines`` so errors point into the YAML.
    """
    if default_slots is None:
        default_slots = 1
    if isinstance(default_slots, bool) or not isinstance(default_slots, int) or default_slots < 1:
        raise ValueError(f"default_slots must be a positive integer (got {default_slots!r})")
    hosts: List[Host] = []
    first_key: Dict[str, str] = {}
    problems: List[Problem] = []
    for index, entry in enumerate(entries):
        key = origin if len(entries) == 1 else f"{origin}[{index}]"
        where: Dict[str, Any] = {
            "file": file, "line": lines[index] if lines else None, "key": key}
        for piece in str(entry).split(","):
            piece = piece.strip()
            if not piece:
                problems.append(Problem("empty host entry; expected 'name' or 'name:N'",
                                        got=str(entry), **where))
                continue
            host, issues = _parse_entry(piece, default_slots)
            problems.extend(_issue_problem(i, **where) for i in issues)
            if host is None:
                continue
            folded = host.name.lower()
            if folded in first_key:
                problems.append(Problem(
                    f"duplicate host {host.name!r} (first listed in {first_key[folded]})",
                    **where))
                continue
            if len(first_key) >= limits.MAX_HOSTS:
                raise HostfileError(problems + [Problem(
                    limits.too_many(len(first_key) + 1, limits.MAX_HOSTS, "hosts"), **where)])
            first_key[folded] = key
            hosts.append(host)
    if not hosts and not problems:
        problems.append(Problem("no hosts given; expected 'name' or 'name:N'", key=origin,
                                file=file))
    if problems:
        raise HostfileError(problems)
    return tuple(hosts)
