"""What a rank leaves behind when it exits: processes it started that still run.

A rank that starts a helper (a server, ``sleep`` in a shell script, a data daemon) and exits
without ending it would otherwise keep the job alive twice over: the helper holds the rank's
output pipe open, so the supervisor never sees end-of-file, and the helper itself outlives the
job. The rank supervisor is a child subreaper (:func:`liveness.become_subreaper`), so such
orphans become its children; after the rank's exit it ends every descendant it still has,
SIGTERM first and SIGKILL after a grace period, and reaps them.
"""
from __future__ import annotations

import os
import signal
import time
from typing import Dict, List

GRACE_S = 2.0  # between SIGTERM and SIGKILL of what a finished rank left running


def _parents() -> Dict[int, int]:
    """pid -> parent pid for every process visible in /proc."""
    parents: Dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 1 and fields[1].isdigit():
            parents[int(entry)] = int(fields[1])
    return parents


def descendants(pid: int) -> List[int]:
    """Every living process below ``pid`` (children, their children, ...), parents first."""
    children: Dict[int, List[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    found: List[int] = []
    queue = list(children.get(pid, []))
    while queue:
        current = queue.pop(0)
        found.append(current)
        queue.extend(children.get(current, []))
    return found


def _reap() -> None:
    """Collect exited children so they do not stay as zombies (and stop counting as alive)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def end_leftovers(grace_s: float = GRACE_S) -> List[int]:
    """End every process still below this one; returns the pids that were running."""
    _reap()
    left = descendants(os.getpid())
    if not left:
        return []
    for signum, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 0.5)):
        for pid in left:
            try:
                os.kill(pid, signum)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            _reap()
            if not descendants(os.getpid()):
                return left
            time.sleep(0.05)
    _reap()
    return left
