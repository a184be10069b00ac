"""Knowing that hvdjob is gone, from every process of its job, whatever killed it.

A job must not outlive its launcher: ``kill -9``, the OOM killer or a lost terminal end hvdjob
without any chance to clean up, and ranks left behind would hold CPUs or GPUs for hours. Three
mechanisms cover every launcher; each is cheap and none needs hvdjob's cooperation at the end:

* **Launcher processes die with hvdjob.** mpirun, srun and horovodrun are started with
  ``PR_SET_PDEATHSIG=SIGTERM``: when hvdjob dies they get SIGTERM and tear down their own job the
  way they know (mpirun's daemons on every host, srun's step, horovodrun's ssh sessions).
* **A rank supervisor watches its parent.** The supervisor remembers the process that started it
  (hvdjob itself, mpirun's orted, slurmstepd, the shell ssh started); when it is reparented, that
  starter is gone and the rank is stopped.
* **A rank supervisor on hvdjob's machine watches hvdjob.** hvdjob's pid, start time, boot id and
  pid namespace travel in the environment (:func:`launcher_identity_env`); a supervisor in the
  same kernel and pid namespace polls ``/proc/<pid>/stat`` and stops its rank once that process is
  gone or is another process. Under mpirun and srun the supervisor's parent outlives hvdjob,
  so this is what ends them on this machine.

A stopped rank first gets SIGTERM (managed ranks save a checkpoint, atomically) and SIGKILL after
:data:`GRACE_S`, so everything ends within ten seconds of hvdjob's death.
"""
from __future__ import annotations

import ctypes
import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, Mapping, Optional

ENV_PID = "HVDJOB_LAUNCHER_PID"
ENV_START = "HVDJOB_LAUNCHER_START"  # start time in clock ticks since boot (/proc/PID/stat field 22)
ENV_BOOT = "HVDJOB_LAUNCHER_BOOT"  # /proc/sys/kernel/random/boot_id: which kernel
ENV_PIDNS = "HVDJOB_LAUNCHER_PIDNS"  # inode of /proc/self/ns/pid: which pid numbering
POLL_S = 0.5
GRACE_S = 5.0  # between SIGTERM (checkpoint and stop) and SIGKILL of an orphaned rank
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36

try:  # resolved once in the parent: nothing is loaded between fork and exec
    _prctl: Optional[Callable[..., int]] = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):
    _prctl = None


def set_parent_death_signal(signum: int) -> bool:
    """Ask the kernel to send ``signum`` to this process when its parent (thread) dies (Linux)."""
    if _prctl is None:
        return False
    return _prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0


def become_subreaper() -> bool:
    """Orphaned descendants are reparented to this process instead of init (Linux), so it can find
    and end what a rank left running (see leftovers.py)."""
    if _prctl is None:
        return False
    return _prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def die_with(parent_pid: int, signum: int = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn``: the child gets ``signum`` when ``parent_pid`` dies, even before exec ends.

    If the parent died between fork and prctl, the child is already reparented: it exits at once.
    """

    def arm() -> None:
        set_parent_death_signal(signum)
        if os.getppid() != parent_pid:
            os._exit(128 + int(signum))

    return arm


def _read(path: str) -> Optional[str]:
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            return fh.read().strip()
    except OSError:
        return None


def process_start_ticks(pid: int) -> Optional[str]:
    """A process's start time since boot (clock ticks): with its pid, it names one process for good."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None  # field 22 of the whole line


def _pid_namespace() -> Optional[str]:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return None


def launcher_identity_env(pid: Optional[int] = None) -> Dict[str, str]:
    """Variables that let a process on this machine tell whether this hvdjob is still alive."""
    pid = os.getpid() if pid is None else pid
    env = {ENV_PID: str(pid)}
    for name, value in ((ENV_START, process_start_ticks(pid)), (ENV_BOOT, _read("/proc/sys/kernel/random/boot_id")),
                        (ENV_PIDNS, _pid_namespace())):
        if value:
            env[name] = value
    return env


@dataclass(frozen=True)
class Launcher:
    """hvdjob as the environment describes it, as seen from one process of its job."""

    pid: int
    start: str

    @classmethod
    def visible_from_here(cls, environ: Mapping[str, str]) -> Optional["Launcher"]:
        """The launcher, when it runs in this kernel and pid namespace (else its pid means nothing here)."""
        pid, start = environ.get(ENV_PID, ""), environ.get(ENV_START, "")
        if not pid.isdigit() or not start:
            return None
        if environ.get(ENV_BOOT) != _read("/proc/sys/kernel/random/boot_id"):
            return None
        if environ.get(ENV_PIDNS) != _pid_namespace():
            return None
        return cls(int(pid), start)

    def alive(self) -> bool:
        return process_start_ticks(self.pid) == self.start


class OrphanWatch:
    """A daemon thread that calls ``on_gone`` once when the launcher or the starting parent is gone."""

    def __init__(self, environ: Mapping[str, str], on_gone: Callable[[str], None], poll_s: float = POLL_S):
        self._launcher = Launcher.visible_from_here(environ)
        self._parent = os.getppid()
        self._on_gone = on_gone
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="hvdjob-orphan-watch", daemon=True)

    def start(self) -> "OrphanWatch":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def why_gone(self) -> Optional[str]:
        if os.getppid() != self._parent:
            return f"its parent process {self._parent} is gone"
        if self._launcher is not None and not self._launcher.alive():
            return f"hvdjob (pid {self._launcher.pid}) is gone"
        return None

    def _loop(self) -> None:
        while not self._stop.wait(self._poll_s):
            reason = self.why_gone()
            if reason:
                self._on_gone(reason)
                return


def stop_orphaned(pid: int, ended: Callable[[], bool], grace_s: float = GRACE_S) -> None:
    """SIGTERM ``pid`` (a chance to checkpoint), SIGKILL it after ``grace_s`` unless ``ended()``."""
    for signum, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 0.0)):
        if ended():
            return
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and not ended():
            time.sleep(0.05)
