"""Is a machine still there? One TCP connect says so, and a few silent ones in a row say it is gone.

Shared by hvdjob's watch of the job's hosts (hostwatch.py) and by each remote rank supervisor's
watch of hvdjob's machine (launcher_reach.py). Standard library only: rank supervisors import it.

A connect is answered by the other machine's kernel, accepted or refused (RST): either means the
machine is on the network, and neither costs it anything or waits for a busy CPU. Only silence (a
timeout, "no route to host") is a miss. :class:`MissCounter` turns misses into a verdict: lost after
``misses_to_lose`` in a row, so one dropped packet or a slow ARP answer does not end a job.
"""
from __future__ import annotations

import errno
import socket
from typing import Dict

PROBE_EVERY_S = 2.0
PROBE_TIMEOUT_S = 2.0
MISSES_TO_LOSE = 4  # with the numbers above: lost 8-12 s after the machine stopped answering
_SILENT_ERRNOS = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT, errno.EHOSTDOWN}


class MissCounter:
    """Counts consecutive unanswered probes per host; pure, so the rule is unit-tested."""

    def __init__(self, misses_to_lose: int = MISSES_TO_LOSE) -> None:
        if misses_to_lose < 1:
            raise ValueError("misses_to_lose must be at least 1")
        self.misses_to_lose = misses_to_lose
        self._misses: Dict[str, int] = {}
        self._silent_since: Dict[str, float] = {}
        self._last_answer: Dict[str, float] = {}

    def record(self, host: str, answered: bool, now: float) -> bool:
        """Note one probe's outcome; True when this probe makes the host lost."""
        if answered:
            self._misses[host] = 0
            self._silent_since.pop(host, None)
            self._last_answer[host] = now
            return False
        self._misses[host] = self._misses.get(host, 0) + 1
        # Silent since the last answer (or the first miss when it never answered since we started).
        self._silent_since.setdefault(host, self._last_answer.get(host, now))
        return self._misses[host] == self.misses_to_lose

    def ever_answered(self, host: str) -> bool:
        return host in self._last_answer

    def misses(self, host: str) -> int:
        return self._misses.get(host, 0)

    def silent_for(self, host: str, now: float) -> float:
        since = self._silent_since.get(host)
        return 0.0 if since is None else now - since


def answers(address: str, port: int, timeout_s: float) -> bool:
    """Whether anything at ``address`` answers a TCP connect (accepting or refusing it)."""
    try:
        with socket.create_connection((address, port), timeout=timeout_s):
            return True
    except ConnectionRefusedError:
        return True  # the host's kernel answered: it is there, just not listening on that port
    except socket.timeout:
        return False
    except OSError as exc:
        if exc.errno in _SILENT_ERRNOS:
            return False
        return True  # e.g. a reset: something answered


