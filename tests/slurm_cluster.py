"""A real single-node Slurm cluster on localhost, for tests.

Slurm-facing code is only trustworthy when it has talked to a real ``slurmctld``: sbatch's
``#SBATCH`` parser, squeue's formats and requeue semantics all differ from what fakes would assume.
:func:`local_slurm` starts ``munged``, ``slurmctld`` and ``slurmd`` with every file (config, key,
sockets, state, spool, logs) in one temporary directory and free ports, so it neither needs nor
touches a system-wide Slurm and several clusters can run side by side. On exit it cancels every job
and stops every process it started (daemons, job steps and their children), so nothing is left running.

Use it as a context manager, or through the session-scoped pytest fixture :func:`slurm_cluster`
(import it into a ``conftest.py``). Client commands reach the cluster through ``cluster.env``
(``SLURM_CONF`` points at the generated config).
"""
from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "srun", "squeue", "sinfo", "scontrol", "scancel")
MARKER_VAR = "HVDJOB_TEST_SLURM_ROOT"  # set in every daemon's environment: finds their leftovers
STARTUP_TIMEOUT = 60.0
DRAIN_TIMEOUT = 30.0


@dataclass
class SlurmCluster:
    """A running cluster: where its files are and the environment that reaches it."""

    root: Path
    conf: Path
    env: Dict[str, str]
    node: str = "localhost"
    partition: str = "debug"
    cpus: int = 1
    processes: Dict[str, "subprocess.Popen[bytes]"] = field(default_factory=dict)
    nodes: Tuple[str, ...] = ("localhost",)

    def run(self, argv: Sequence[str], timeout: float = 30.0, check: bool = True) -> subprocess.CompletedProcess:
        """Run a Slurm client command against this cluster and capture its output."""
        return subprocess.run(
            list(argv), env=self.env, capture_output=True, text=True, timeout=timeout, check=check
        )

    def job_state(self, job_id: str) -> Optional[str]:
        """The job's state while slurmctld remembers it (MinJobAge), else None."""
        out = self.run(["squeue", "-h", "--states=all", "-j", job_id, "-o", "%T"], check=False)
        state = out.stdout.strip()
        return state or None

    def wait_for_state(self, job_id: str, states: Sequence[str], timeout: float = 120.0) -> str:
        """Poll until the job reaches one of ``states``; return it (AssertionError on timeout)."""
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            state = self.job_state(job_id)
            if state in states:
                return state
            time.sleep(0.5)
        raise AssertionError(f"job {job_id} did not reach {list(states)} in {timeout}s (last: {state})\n{self.logs()}")

    def logs(self, lines: int = 30) -> str:
        """The tail of every daemon log: shown when something about the cluster goes wrong."""
        parts = []
        for path in sorted((self.root / "log").glob("*.log")):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path} ---\n" + "\n".join(tail))
        return "\n".join(parts)


def missing_binaries() -> List[str]:
    """The Slurm/munge programs this machine lacks (empty when a cluster can start)."""
    return [name for name in DAEMONS + CLIENTS if _which(name) is None]


def _which(name: str) -> Optional[str]:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/local/sbin")


def _user_name() -> str:
    """Who the daemons run as and whose jobs are cancelled: the effective user, whatever $USER says."""
    return pwd.getpwuid(os.geteuid()).pw_name


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class NodeDef:
    """One slurmd: its node name and the address slurmctld reaches it on."""

    name: str
    address: str


def _write_conf(
    root: Path,
    user: str,
    cpus: int,
    munge_socket: Path,
    nodes: Sequence[NodeDef] = (NodeDef("localhost", "127.0.0.1"),),
    controller: NodeDef = NodeDef("localhost", "127.0.0.1"),
) -> Path:
    """slurm.conf for one partition ``debug`` over ``nodes``; per-node files carry the node name."""
    ctld_port, slurmd_port = _free_port(), _free_port()
    while slurmd_port == ctld_port:
        slurmd_port = _free_port()
    controller_spec = controller.name if controller.address == "127.0.0.1" else f"{controller.name}({controller.address})"
    lines = [
        "ClusterName=hvdjobtest",
        f"SlurmctldHost={controller_spec}",
        f"SlurmctldPort={ctld_port}",
        f"SlurmdPort={slurmd_port}",
        f"SlurmUser={user}",
        f"SlurmdUser={user}",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        # cred_expire also delays a requeued job's restart (default 120 s): keep requeue tests short.
        f"AuthInfo=socket={munge_socket},cred_expire=10",
        f"StateSaveLocation={root / 'state'}",
        f"SlurmdSpoolDir={root / 'spool' / '%n'}",
        f"SlurmctldPidFile={root / 'run' / 'slurmctld.pid'}",
        f"SlurmdPidFile={root / 'run' / 'slurmd.%n.pid'}",
        f"SlurmctldLogFile={root / 'log' / 'slurmctld.log'}",
        f"SlurmdLogFile={root / 'log' / 'slurmd.%n.log'}",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_CPU",
        "SchedulerType=sched/builtin",
        "SchedulerParameters=sched_interval=2",  # default 60 s: a requeued job would idle that long
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "JobCompType=jobcomp/none",
        "MpiDefault=none",
        "JobRequeue=1",
        "ReturnToService=2",
        "KillWait=5",
        "MinJobAge=600",  # finished jobs stay visible to squeue/scontrol (there is no accounting db)
        "SlurmctldTimeout=30",
        # How long a silent node stays "up": the node-loss tests wait for this.
        f"SlurmdTimeout={60 if len(nodes) == 1 else 20}",
        *(f"NodeName={n.name} NodeAddr={n.address} CPUs={cpus} RealMemory=1000 State=UNKNOWN" for n in nodes),
        f"PartitionName=debug Nodes={','.join(n.name for n in nodes)} Default=YES MaxTime=INFINITE State=UP",
    ]
    for node in nodes:
        (root / "spool" / node.name).mkdir(parents=True, exist_ok=True)
    conf = root / "slurm.conf"
    conf.write_text("\n".join(lines) + "\n")
    return conf


def _start_munged(root: Path, as_root: bool) -> "tuple[subprocess.Popen[bytes], Path]":
    """munged with a fresh key and its own socket, run as user munge when we are root."""
    munge_dir = root / "munge"
    munge_dir.mkdir()
    munge_dir.chmod(0o711)  # munged insists that clients can reach its socket
    key = munge_dir / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    sock = munge_dir / "munge.socket"
    user_kwargs: Dict[str, str] = {}
    if as_root:
        entry = pwd.getpwnam("munge")
        for path in (munge_dir, key):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        user_kwargs = {"user": "munge", "group": "munge"}
    argv = [
        _which("munged") or "munged",
        "--foreground",
        f"--socket={sock}",
        f"--key-file={key}",
        f"--pid-file={munge_dir / 'munged.pid'}",
        f"--seed-file={munge_dir / 'munged.seed'}",
        f"--log-file={munge_dir / 'munged.log'}",
    ]
    log = open(root / "log" / "munged.log", "wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=_daemon_env(root), **user_kwargs)
    log.close()
    _wait_until(lambda: sock.exists() or proc.poll() is not None, 15.0)
    if proc.poll() is not None or not sock.exists():
        raise RuntimeError(f"munged did not start:\n{(root / 'log' / 'munged.log').read_text(errors='replace')}")
    return proc, sock


def _daemon_env(root: Path) -> Dict[str, str]:
    env = dict(os.environ)
    env[MARKER_VAR] = str(root)
    env["SLURM_CONF"] = str(root / "slurm.conf")
    return env


def _start_daemon(
    root: Path, name: str, argv: List[str], prefix: Sequence[str] = ()
) -> "subprocess.Popen[bytes]":
    """A Slurm daemon in the foreground (-D), so we hold its pid; its own log goes to log/<name>.log.

    ``prefix`` runs it elsewhere, e.g. inside a namespace host (``nsenter ... --``); it must exec.
    """
    log = open(root / "log" / f"{name}.out", "wb")
    proc = subprocess.Popen([*prefix, _which(argv[0]) or argv[0], *argv[1:]], stdout=log, stderr=subprocess.STDOUT,
                            env=_daemon_env(root), start_new_session=True)
    log.close()
    return proc


def _wait_until(predicate, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def _idle_nodes(cluster: SlurmCluster) -> List[str]:
    out = cluster.run(["sinfo", "-h", "-N", "-o", "%N %t"], timeout=10, check=False)
    if out.returncode != 0:
        return []
    return [line.split()[0] for line in out.stdout.splitlines() if line.split()[1:] == ["idle"]]


@contextlib.contextmanager
def local_slurm(cpus: Optional[int] = None, keep_dir: bool = False) -> Iterator[SlurmCluster]:
    """Start a one-node cluster named ``localhost`` with partition ``debug``; stop it all on exit.

    ``cpus`` defaults to the machine's core count. The yielded ``cluster.env`` is ``os.environ`` plus
    ``SLURM_CONF`` and the cleanup marker: pass it to every subprocess that should talk to this
    cluster. ``keep_dir`` (or ``HVDJOB_KEEP_SLURM_DIR=1``) keeps the directory with the logs after exit.
    """
    with slurm_over_nodes([NodeDef("localhost", "127.0.0.1")], cpus=cpus, keep_dir=keep_dir) as cluster:
        yield cluster


@contextlib.contextmanager
def slurm_over_nodes(
    nodes: Sequence[NodeDef],
    *,
    controller: NodeDef = NodeDef("localhost", "127.0.0.1"),
    cpus: Optional[int] = None,
    enter_node: Callable[[str], Sequence[str]] = lambda _node: (),
    keep_dir: bool = False,
) -> Iterator[SlurmCluster]:
    """A cluster of one slurmd per node in ``nodes``; ``enter_node(name)`` is the argv prefix that
    runs a program on that node (empty: on this machine). Stops everything on exit."""
    missing = missing_binaries()
    if missing:
        raise RuntimeError(f"Slurm/munge programs not installed: {', '.join(missing)}")
    cpus = cpus or os.cpu_count() or 1
    as_root = os.geteuid() == 0
    user = _user_name()
    root = Path(tempfile.mkdtemp(prefix="hvdslurm-"))  # short: unix socket paths max out at 108 bytes
    root.chmod(0o755)  # munged (another user) must reach its own subdirectory
    for sub in ("state", "spool", "log", "run"):
        (root / sub).mkdir()
    processes: Dict[str, "subprocess.Popen[bytes]"] = {}
    cluster: Optional[SlurmCluster] = None
    try:
        processes["munged"], munge_socket = _start_munged(root, as_root)
        conf = _write_conf(root, user, cpus, munge_socket, nodes, controller)
        env = _daemon_env(root)  # jobs submitted with it carry the marker too
        cluster = SlurmCluster(root=root, conf=conf, env=env, node=nodes[0].name, cpus=cpus, processes=processes,
                               nodes=tuple(n.name for n in nodes))
        processes["slurmctld"] = _start_daemon(root, "slurmctld", ["slurmctld", "-D", "-c", "-f", str(conf)])
        for node in nodes:
            key = "slurmd" if len(nodes) == 1 else f"slurmd:{node.name}"
            processes[key] = _start_daemon(root, key.replace(":", "."), ["slurmd", "-D", "-N", node.name, "-f", str(conf)],
                                           prefix=enter_node(node.name))
        _wait_for_idle_nodes(cluster)
        yield cluster
    finally:
        _shutdown(root, processes, cluster)
        if not (keep_dir or os.environ.get("HVDJOB_KEEP_SLURM_DIR")):
            shutil.rmtree(root, ignore_errors=True)


def _wait_for_idle_nodes(cluster: SlurmCluster) -> None:
    def alive() -> bool:
        return all(p.poll() is None for p in cluster.processes.values())

    def all_idle() -> bool:
        return set(_idle_nodes(cluster)) >= set(cluster.nodes)

    _wait_until(lambda: not alive() or all_idle(), STARTUP_TIMEOUT, 0.5)
    if not alive() or not all_idle():
        raise RuntimeError(f"Slurm did not come up (nodes not idle within {STARTUP_TIMEOUT:g}s)\n{cluster.logs()}")


def _shutdown(root: Path, processes: Dict[str, "subprocess.Popen[bytes]"], cluster: Optional[SlurmCluster]) -> None:
    """Cancel every job, wait for the queue to drain, then stop the daemons and any leftovers."""
    if cluster is not None and processes.get("slurmctld") and processes["slurmctld"].poll() is None:
        cluster.run(["scancel", "--user", _user_name()], timeout=15, check=False)
        _wait_until(lambda: _queue_empty(cluster), DRAIN_TIMEOUT, 0.5)
    for name in sorted(processes, key=lambda n: ("slurmd", "slurmctld", "munged").index(n.split(":")[0])):
        _terminate(processes[name])
    _stop_leftovers(root)


def _queue_empty(cluster: SlurmCluster) -> bool:
    out = cluster.run(["squeue", "-h", "-o", "%i"], timeout=10, check=False)
    return out.returncode != 0 or not out.stdout.strip()


def _terminate(proc: "subprocess.Popen[bytes]", grace: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=grace)


def _stop_leftovers(root: Path) -> None:
    """Kill processes this cluster started that outlived their daemon (slurmstepd, job steps).

    They are recognised by the marker variable every daemon was started with, which slurmstepd
    and the jobs' processes inherit; nothing else on the machine carries this directory's path.
    """
    marker = f"{MARKER_VAR}={root}".encode()
    for _ in range(2):
        pids = [pid for pid in _pids_with_env(marker) if pid != os.getpid()]
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)


def _pids_with_env(marker: bytes) -> List[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            pids.append(int(entry.name))
    return pids


try:  # the fixture is offered only where pytest is importable; the context manager works without it
    import pytest

    @pytest.fixture(scope="session")
    def slurm_cluster() -> Iterator[SlurmCluster]:
        """One local Slurm for the whole test session (starting it takes a few seconds)."""
        missing = missing_binaries()
        if missing:
            pytest.skip(f"Slurm is not installed here (missing: {', '.join(missing)})")
        with local_slurm() as cluster:
            yield cluster

except ImportError:  # pragma: no cover
    pass
