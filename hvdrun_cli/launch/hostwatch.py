"""Notice, within seconds, that a host of a running multi-host job has dropped off the network.

A host that is cut off (cable, switch port, firewall that drops, a hung kernel) sends no RST: every
TCP connection to it just stalls. mpirun then waits for ever (its ranks sit in an allreduce), and
Gloo only gives up after its own timeout with "Horovod has been shut down" on the *healthy* ranks,
which names the wrong place. So hvdjob watches the remote hosts itself while a job runs.

The probe is a TCP connect to the host's ssh port (the port mpirun and horovodrun started the ranks
through, as ``ssh -G`` resolves it from ``~/.ssh/config``): it is answered by the host's kernel,
so it costs nothing there and is not slowed down by a busy CPU. An accepted connection and a
refused one both mean the host is there; only silence (timeout, "no route to host") is a miss.
A host is lost after ``MISSES_TO_LOSE`` misses in a row, none answered in between: one lost
packet or a slow ARP does not end a job (see reach.py). A host whose ssh port never answered the
probe (reached through a ProxyJump, or a firewall in between that only lets ssh's own route
through) is not judged at all: the probe cannot see it, so its silence means nothing.

The rank supervisors on the lost host run the same probe towards hvdjob's machine and stop their
ranks themselves (see launcher_reach.py): nothing of the job keeps running there even while the
host stays cut off.
"""
from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

from hvdrun_cli.launch.inputs import is_local_host
from hvdrun_cli.launch.reach import MISSES_TO_LOSE, PROBE_EVERY_S, PROBE_TIMEOUT_S, MissCounter, answers

SSH_PORT = 22
SSH_G_TIMEOUT_S = 5.0
SSH_LAUNCHERS = ("mpi", "gloo")  # the launchers that start ranks on other hosts through ssh
# One probing thread (and one ``ssh -G``) per host: beyond this many hosts only the first are watched.
# Jobs that large run under a scheduler (srun: Slurm watches its nodes) rather than over ssh.
MAX_WATCHED_HOSTS = 256

Probe = Callable[[str, int, float], bool]


def watched_hosts(launcher: str, layout_hosts: Sequence[str], own_hostname: str) -> List[str]:
    """The hosts worth watching: other machines that ssh launchers started ranks on (in rank order).

    srun's hosts are Slurm's to watch (it ends a step whose node stops responding); elastic jobs
    drop lost hosts themselves; local ranks share hvdjob's fate.
    """
    if str(launcher) not in SSH_LAUNCHERS:
        return []
    remote = [h for h in dict.fromkeys(layout_hosts) if not is_local_host(h, own_hostname)]
    return remote[:MAX_WATCHED_HOSTS]


@dataclass(frozen=True)
class LostHost:
    """A host that stopped answering: its name, the address and port probed, since when it is silent."""

    name: str
    address: str
    port: int
    silent_s: float
    misses: int

    def describe(self) -> str:
        return (f"lost contact with host {self.name}: no answer from {self.address}:{self.port} for "
                f"{self.silent_s:.0f} s ({self.misses} probes in a row)")


def ssh_endpoint(host: str, timeout_s: float = SSH_G_TIMEOUT_S) -> Tuple[str, int]:
    """Address and port ``ssh host`` connects to (``ssh -G`` applies ~/.ssh/config); (host, 22) when unknown."""
    try:
        out = subprocess.run(["ssh", "-G", "--", host], capture_output=True, text=True, timeout=timeout_s,
                             check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return host, SSH_PORT
    name, port = host, SSH_PORT
    for line in out.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key == "hostname" and value.strip():
            name = value.strip()
        elif key == "port" and value.strip().isdigit():
            port = int(value.strip())
    return name, port


class HostWatch:
    """Probes each remote host on a thread of its own; :meth:`lost` returns the first host lost."""

    def __init__(
        self,
        hosts: Sequence[str],
        probe: Probe = answers,
        every_s: float = PROBE_EVERY_S,
        timeout_s: float = PROBE_TIMEOUT_S,
        misses_to_lose: int = MISSES_TO_LOSE,
        endpoint: Callable[[str], Tuple[str, int]] = ssh_endpoint,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hosts = list(dict.fromkeys(hosts))
        self._probe = probe
        self._every_s = every_s
        self._timeout_s = timeout_s
        self._endpoint = endpoint
        self._clock = clock
        self._counter = MissCounter(misses_to_lose)
        self._lock = threading.Lock()
        self._lost: List[LostHost] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, args=(h,), name=f"hvdjob-hostwatch-{h}", daemon=True)
                         for h in self.hosts]

    def start(self) -> "HostWatch":
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def lost(self) -> Optional[LostHost]:
        with self._lock:
            return self._lost[0] if self._lost else None

    def all_lost(self) -> Tuple[LostHost, ...]:
        with self._lock:
            return tuple(self._lost)

    def _loop(self, host: str) -> None:
        address, port = self._endpoint(host)
        while not self._stop.is_set():
            started = self._clock()
            answered = self._probe(address, port, self._timeout_s)
            now = self._clock()
            with self._lock:
                if not answered and not self._counter.ever_answered(host):
                    pass  # not armed: this probe cannot reach the host (ProxyJump, a firewall); ssh can
                elif self._counter.record(host, answered, now):
                    self._lost.append(LostHost(host, address, port, self._counter.silent_for(host, now),
                                               self._counter.misses(host)))
                    return  # a lost host stays lost for this attempt
            self._stop.wait(max(0.0, self._every_s - (now - started)))
