"""Rank supervisor: runs one rank's process and labels everything it prints with the rank.

Started by every launcher as ``python -m hvdrun_cli.launch.rank_io -- <rank command>``. It is tiny
(no framework imports) and does four things that work the same under the local launcher, horovodrun,
mpirun and srun:

* prefixes each output line with ``[RANK] `` so hvdjob can show live output and keep per-rank logs
  on the launching machine, even for ranks on other hosts;
* forwards SIGINT/SIGTERM/SIGUSR1/SIGUSR2/SIGHUP to the rank (graceful stop, Slurm preemption);
* reports how the rank ended (exit code or signal) in one recognisable line, then exits with the
  rank's status (128+N for a signal), so the launcher can name the failed rank;
* under srun, turns ``SLURM_PROCID`` into Horovod's Gloo rank variables from the plan's layout file.
Carriage-return updates (progress bars) are passed on as they come, as lines ending in ``\r``
(see segments.py). The kernel kills the rank if the supervisor itself dies, and the supervisor
stops its rank when hvdjob or the process that started it is gone (see liveness.py), or, on another
host, when hvdjob's machine stops answering (see launcher_reach.py), so no rank is orphaned.
"""
from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from typing import BinaryIO, Callable, Dict, List, Mapping, Optional, Sequence

from hvdrun_cli.contract import (ENV_GLOO_LAYOUT, RANK_VARIABLES, could_not_start_line, decode_layout_slot,
                                 exited_line, killed_line, rank_label, started_line)
from hvdrun_cli.launch.affinity import bind_rank
from hvdrun_cli.launch.launcher_reach import watch_launcher_reach
from hvdrun_cli.launch.leftovers import end_leftovers
from hvdrun_cli.launch.liveness import OrphanWatch, become_subreaper, set_parent_death_signal, stop_orphaned
from hvdrun_cli.launch.segments import CarriageSplitter
from hvdrun_cli.launch.netif import interface_towards

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP)
EXIT_POLL_S = 0.25  # how often the output pump checks whether the rank has exited
DRAIN_S = 1.0  # after the rank's exit, output still read from processes it left behind


def detect_rank(environ: Mapping[str, str]) -> str:
    for name in RANK_VARIABLES:
        if environ.get(name, "").isdigit():
            return environ[name]
    return "?"


def slurm_gloo_env(environ: Mapping[str, str]) -> Dict[str, str]:
    """Horovod Gloo rank variables for this Slurm task, from the layout file the plan wrote."""
    layout_path = environ.get(ENV_GLOO_LAYOUT)
    procid = environ.get("SLURM_PROCID")
    if not layout_path or procid is None or "HOROVOD_RANK" in environ:
        return {}
    with open(layout_path, encoding="utf-8") as fh:
        return {**gloo_iface_env(environ), **decode_layout_slot(fh.read(), int(procid))}


def gloo_iface_env(environ: Mapping[str, str]) -> Dict[str, str]:
    """Gloo's interface on this node, when the plan could not name one: the one that reaches the
    rendezvous host. Without it Gloo announces the address of this node's own name, which is
    loopback on many clusters, and the ranks on other nodes cannot connect."""
    addr = environ.get("HOROVOD_GLOO_RENDEZVOUS_ADDR", "")
    if environ.get("HOROVOD_GLOO_IFACE") or not addr:
        return {}
    iface = interface_towards(addr)
    return {"HOROVOD_GLOO_IFACE": iface} if iface else {}


def _die_with_parent() -> None:
    """In the child: receive SIGKILL when the supervisor dies (Linux only; best effort elsewhere)."""
    set_parent_death_signal(signal.SIGKILL)


def _stop_when_ssh_session_ends() -> None:
    """Started over ssh (horovodrun across hosts): the end of the ssh session is a stop request.

    horovodrun stops remote ranks by closing their ssh sessions; without this the supervisor is
    reparented to init and its rank keeps running on the remote host.
    """
    if "SSH_CONNECTION" not in os.environ:
        return
    if not set_parent_death_signal(signal.SIGTERM):
        return
    if os.getppid() == 1:  # the session ended before the line above took effect
        os.kill(os.getpid(), signal.SIGTERM)


def describe_end(rank: str, returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return killed_line(rank, name)
    return exited_line(rank, returncode)


def run(command: Sequence[str], environ: Optional[Mapping[str, str]] = None) -> int:
    env = dict(os.environ if environ is None else environ)
    env.update(slurm_gloo_env(env))
    env.update(bind_rank(env))  # CPU binding (affinity.py), inherited by the rank
    rank = detect_rank(env)
    prefix = rank_label(rank).encode()
    write = _writer(sys.stdout.buffer)

    def emit(data: bytes) -> None:
        write(prefix + data)

    become_subreaper()  # what the rank leaves running becomes ours to end (leftovers.py)
    try:
        child = subprocess.Popen(
            list(command),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
    except OSError as exc:
        emit((could_not_start_line(rank, command[0], exc) + "\n").encode())
        return 127

    def forward(signum: int, _frame: object) -> None:
        try:
            child.send_signal(signum)
        except ProcessLookupError:
            pass

    for sig in FORWARDED_SIGNALS:
        signal.signal(sig, forward)

    def orphaned(reason: str) -> None:
        emit(f"hvdjob: rank {rank}: stopping, {reason}\n".encode())
        stop_orphaned(child.pid, lambda: child.returncode is not None or _is_zombie(child.pid))
        time.sleep(2.0)  # the main thread normally reports the end and exits by now
        os._exit(128 + signal.SIGTERM)  # it is stuck writing to a launcher that is gone

    watch = OrphanWatch(env, orphaned).start()
    reach = watch_launcher_reach(env, orphaned)  # on another host: stop when cut off from hvdjob's machine
    emit((started_line(rank, child.pid, socket.gethostname()) + "\n").encode())
    assert child.stdout is not None
    pump_output(child.stdout.fileno(), prefix, write, exited=lambda: child.poll() is not None)
    returncode = child.wait()
    left = end_leftovers()
    if left:
        emit(f"hvdjob: rank {rank}: ended {len(left)} process(es) it left running (pid "
             f"{', '.join(map(str, left[:8]))}{', ...' if len(left) > 8 else ''})\n".encode())
    watch.stop()
    if reach:
        reach.stop()
    emit((describe_end(rank, returncode) + "\n").encode())
    return 128 - returncode if returncode < 0 else returncode


def pump_output(fd: int, prefix: bytes, emit_raw: Callable[[bytes], None],
                exited: Optional[Callable[[], bool]] = None) -> None:
    """Copy the rank's output to ours, prefixed: finished lines end in ``\\n``, live updates in ``\\r\\n``.

    Ends at end-of-file, or, once ``exited()`` says the rank is gone, when the pipe has been quiet
    for a moment (at most ``DRAIN_S`` after the exit): a process the rank started may hold the
    pipe open for ever (see leftovers.py)."""
    splitter = CarriageSplitter()
    drain_until: Optional[float] = None
    while True:
        due = splitter.due_in(time.monotonic())
        timeout = due if exited is None else min(EXIT_POLL_S, EXIT_POLL_S if due is None else due)
        ready, _, _ = select.select([fd], [], [], timeout)
        now = time.monotonic()
        if drain_until is not None and (not ready or now >= drain_until):
            break  # quiet since a select that began after the exit was seen: all the rank wrote is read
        if exited is not None and drain_until is None and exited():
            drain_until = now + DRAIN_S
        if ready:
            data = os.read(fd, 65536)
            if not data:
                break
            pieces = splitter.feed(data, now)
        else:
            pieces = splitter.tick(now)
        if pieces:
            emit_raw(b"".join(prefix + text + (b"\r\n" if update else b"\n") for text, update in pieces))
    tail = splitter.close()
    if tail:
        emit_raw(b"".join(prefix + text + b"\n" for text, _ in tail))


def _writer(out: BinaryIO) -> Callable[[bytes], None]:
    def write(data: bytes) -> None:
        try:
            out.write(data)
            out.flush()
        except (BrokenPipeError, ValueError):
            pass  # the launcher is gone: the orphan watch stops the rank

    return write


def _is_zombie(pid: int) -> bool:
    """The rank has exited but is not reaped yet (the main thread may be stuck writing)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def main(argv: Optional[List[str]] = None) -> None:
    _stop_when_ssh_session_ends()
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "--":
        args = args[1:]
    if not args:
        sys.stderr.write("usage: python -m hvdrun_cli.launch.rank_io -- COMMAND [ARGS...]\n")
        sys.exit(2)
    sys.exit(run(args))


if __name__ == "__main__":
    main()
