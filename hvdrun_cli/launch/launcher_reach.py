"""On a remote host: stop the rank when hvdjob's machine can no longer be reached.

When a host drops off the network, hvdjob ends the job (hostwatch.py), but it cannot reach the
ranks on the cut host to stop them, and neither can mpirun or horovodrun: without an RST their
connections just stall, and the ranks would sit in a collective until the network comes back, or
for good (holding CPUs or GPUs of a machine that may still be up). So each rank supervisor started
on another machine than hvdjob's probes hvdjob's machine (``HVDJOB_LAUNCHER_REACH``, address and
port, set by the plan) the way hvdjob probes the hosts (reach.py), and stops its rank after the same
number of silent probes: both sides of a cut give up within seconds of each other.

The watch arms itself only after a first answer: a firewall that silently drops the probe from the
start must not stop healthy ranks (the job then just lacks this protection).
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Mapping, Optional, Tuple

from hvdrun_cli.contract import ENV_LAUNCHER_REACH
from hvdrun_cli.launch.reach import MISSES_TO_LOSE, PROBE_EVERY_S, PROBE_TIMEOUT_S, MissCounter, answers

Probe = Callable[[str, int, float], bool]


def reach_target(environ: Mapping[str, str]) -> Optional[Tuple[str, int]]:
    """(address, port) from ``HVDJOB_LAUNCHER_REACH``, or None when unset or malformed."""
    value = environ.get(ENV_LAUNCHER_REACH, "")
    address, _, port = value.rpartition(":")
    if not address or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return address.strip("[]"), int(port)


class LauncherReachWatch:
    """A daemon thread that calls ``on_gone`` once when hvdjob's machine stops answering."""

    def __init__(self, address: str, port: int, on_gone: Callable[[str], None], probe: Probe = answers,
                 every_s: float = PROBE_EVERY_S, timeout_s: float = PROBE_TIMEOUT_S,
                 misses_to_lose: int = MISSES_TO_LOSE, clock: Callable[[], float] = time.monotonic):
        self.address, self.port = address, port
        self._on_gone = on_gone
        self._probe = probe
        self._every_s = every_s
        self._timeout_s = timeout_s
        self._counter = MissCounter(misses_to_lose)
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="hvdjob-launcher-reach", daemon=True)

    def start(self) -> "LauncherReachWatch":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def step(self) -> Optional[str]:
        """One probe; the reason to stop when this probe makes hvdjob's machine lost, else None."""
        key = self.address
        answered = self._probe(self.address, self.port, self._timeout_s)
        now = self._clock()
        if not answered and not self._counter.ever_answered(key):
            return None  # not armed yet: maybe a firewall drops the probe; never stop on that
        if self._counter.record(key, answered, now):
            return (f"hvdjob's machine {self.address} has not answered for {self._counter.silent_for(key, now):.0f} s "
                    "(this host is cut off from the job)")
        return None

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = self._clock()
            reason = self.step()
            if reason:
                self._on_gone(reason)
                return
            self._stop.wait(max(0.0, self._every_s - (self._clock() - started)))


def watch_launcher_reach(environ: Mapping[str, str], on_gone: Callable[[str], None]) -> Optional[LauncherReachWatch]:
    """Start the watch when the plan asked for it (ranks on other hosts than hvdjob's)."""
    target = reach_target(environ)
    if target is None:
        return None
    return LauncherReachWatch(target[0], target[1], on_gone).start()
