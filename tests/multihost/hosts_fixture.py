"""Several real ssh hosts on this one machine, for multi-host tests.

Each host is a Linux network namespace (``hvdhost1``, ``hvdhost2``, ...) with its own address on a
private bridge, its own hostname (sshd runs in a fresh UTS namespace) and its own ``sshd`` on port 22.
The mount namespace is shared, so the repository and the virtual environment sit at the same paths
on every host: exactly what a real cluster with a shared filesystem looks like to ``mpirun``,
``horovodrun`` and ``hvdjob``.

Why these choices:

* The bridge lives in the root namespace (where ``hvdjob``, ``mpirun`` and ``horovodrun`` run) and is
  named like the hosts' own interface (``hvdnet0``). Horovod's Gloo launcher looks up the *driver's*
  address on the interface it found common to the hosts, so on a real cluster every node has the same
  NIC name; giving the launcher side the same name reproduces that.
* Host names must resolve for ssh, Open MPI and horovodrun alike, and all three read ``/etc/hosts``;
  passwordless ssh must work for all three, and both use ``ssh`` with ``~/.ssh/config``. So a marked
  block is added to each file for the session and removed afterwards.
* Each sshd runs in a UTS namespace of its own, named after its host, so everything started over
  ssh sees that hostname. With the machine's single hostname shared by all hosts, Open MPI took the
  hosts for one node (Horovod's MPI init crashed in MPI_Comm_dup) and Gloo connected ranks on
  "other" hosts through 127.0.0.1: every real cluster node has its own name, and both rely on it.
* Each host also has a mount namespace of its own with its own ``/etc/hosts``: the shared entries plus
  ``127.0.1.1 <its own name>`` first, as Debian's installer writes it and as many real cluster nodes
  have it. A node asking the resolver for its own name then gets loopback, so code that takes "my
  address" from the hostname (instead of the interface that reaches the peers) fails here as it
  would on such a cluster. Daemons started inside a host (Slurm's slurmd) enter all three of its
  namespaces with :meth:`HostCluster.enter_argv`.
* The namespaces have no default route: nothing in them can reach any address outside 10.213.0.0/24.
* Two names resolve into the same range with nothing behind them: ``hvdhost-down`` (no answer to
  ARP, so connecting fails after about 3 s with "No route to host", like a powered-off node) and
  ``hvdhost-silent`` (a permanent neighbour entry sends its packets to a MAC address nobody has, so
  they vanish: like a hung machine or a firewall that drops; ssh then waits for its ConnectTimeout,
  without one for the kernel's two-minute TCP connect timeout).

Everything is removed afterwards, and leftovers of an interrupted earlier run are removed first.
A file lock keeps two test sessions on one machine from building the same hosts at once.
Run ``python -m tests.multihost.hosts_fixture up|down`` to try the hosts by hand.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

SUBNET = "10.213.0"  # a /24 used only inside these namespaces and the bridge
BRIDGE_ADDRESS = f"{SUBNET}.1"
NIC = "hvdnet0"  # the bridge in the root namespace and each host's interface inside its namespace
HOST_PREFIX = "hvdhost"
DOWN_HOST = "hvdhost-down"
DOWN_ADDRESS = f"{SUBNET}.99"
SILENT_HOST = "hvdhost-silent"
SILENT_ADDRESS = f"{SUBNET}.98"
NOBODYS_MAC = "02:00:00:00:00:98"  # locally administered, on no interface
STATE_DIR = Path("/run/hvdjob-multihost")
LOCK_FILE = Path("/run/lock/hvdjob-multihost.lock")
ETC_HOSTS = Path("/etc/hosts")
SSH_DIR = Path.home() / ".ssh"
SSH_CONFIG = SSH_DIR / "config"
PRIVSEP_DIR = Path("/run/sshd")  # Debian's sshd refuses to start without it
BLOCK_BEGIN = "# >>> hvdjob multihost test hosts (removed when the tests end) >>>"
BLOCK_END = "# <<< hvdjob multihost test hosts <<<"
SSHD_READY_TIMEOUT_S = 20.0
LOCK_TIMEOUT_S = 900.0
_OWN_NETNS = re.compile(rf"{HOST_PREFIX}\d+")
_OWN_VETH = re.compile(r"hvdv\d+")

# Runs inside the new UTS and mount namespaces: give the host its own name and its own /etc/hosts
# (bind-mounted over the shared one; the mount namespace is private, so nothing leaks out), then
# become sshd. A constant program; the host name, hosts file and sshd's argv arrive as arguments.
_BECOME_HOST_AND_EXEC = (
    "import ctypes, os, socket, sys\n"
    "socket.sethostname(sys.argv[1])\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "MS_BIND = 4096\n"
    "if libc.mount(sys.argv[2].encode(), b'/etc/hosts', None, MS_BIND, None) != 0:\n"
    "    raise OSError(ctypes.get_errno(), 'bind mount of ' + sys.argv[2] + ' over /etc/hosts')\n"
    "os.execv(sys.argv[3], sys.argv[3:])\n"
)
OWN_NAME_ADDRESS = "127.0.1.1"  # what each host's resolver answers for its own name
_SSHD: List["subprocess.Popen[bytes]"] = []  # started by this process, reaped by cleanup()
_ENTRY_PIDS: Dict[str, int] = {}  # host name -> pid of its sshd: the process whose namespaces are the host


class HostsUnavailable(RuntimeError):
    """This machine cannot create namespace hosts (not root, no ``ip netns``, no sshd)."""


@dataclass(frozen=True)
class NamespaceHost:
    """One host: its name (also its network namespace and hostname), address and bridge port."""

    name: str
    address: str
    veth: str  # the root-namespace end of its veth pair, enslaved to the bridge


@dataclass(frozen=True)
class HostCluster:
    """The running hosts and what tests need to address them."""

    hosts: Tuple[NamespaceHost, ...]
    nic: str = NIC
    down_host: str = DOWN_HOST
    down_address: str = DOWN_ADDRESS
    silent_host: str = SILENT_HOST
    silent_address: str = SILENT_ADDRESS
    bridge_address: str = BRIDGE_ADDRESS

    @property
    def names(self) -> List[str]:
        return [h.name for h in self.hosts]

    def ssh(self, host: str, *argv: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
        """Run a command on a host the way the launchers do: ``ssh host command``."""
        return subprocess.run(
            ["ssh", "-o", "BatchMode=yes", host, *argv],
            capture_output=True, text=True, timeout=timeout, check=False,
        )

    def pids(self, host: str) -> List[int]:
        """Processes running on a host (its sshd, sessions and whatever they started)."""
        return netns_pids(host)

    def enter_argv(self, host: str) -> List[str]:
        """Prefix that runs a command inside ``host``: its network, hostname and /etc/hosts."""
        pid = _ENTRY_PIDS.get(host)
        if pid is None or not _alive(pid):
            raise RuntimeError(f"host {host} is not running (its sshd is gone)")
        return ["nsenter", f"--target={pid}", "--net", "--uts", "--mount", "--"]


# -- small helpers -------------------------------------------------------------------------------

def _run(argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=60, check=check)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return _run(["ip", *args], check=check)


def netns_pids(name: str) -> List[int]:
    out = _ip("netns", "pids", name, check=False)
    return [int(p) for p in out.stdout.split() if p.isdigit()]


def _netns_names() -> List[str]:
    out = _ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _link_exists(name: str) -> bool:
    return _ip("link", "show", "dev", name, check=False).returncode == 0


def _strip_block(text: str) -> str:
    """``text`` without our marked block (and without the blank line we put after it)."""
    pattern = re.compile(rf"{re.escape(BLOCK_BEGIN)}\n.*?{re.escape(BLOCK_END)}\n?\n?", re.S)
    return pattern.sub("", text)


def _write_in_place(path: Path, text: str) -> None:
    """Rewrite without replacing the inode: /etc/hosts is often a bind mount in containers."""
    with open(path, "r+", encoding="utf-8") as fh:
        fh.seek(0)
        fh.write(text)
        fh.truncate()


def _kill_all(pids: Sequence[int]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = []
        for pid in pids:
            try:
                os.kill(pid, sig)
                alive.append(pid)
            except ProcessLookupError:
                pass
        if not alive:
            return
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and any(_alive(p) for p in alive):
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    """Running (a zombie counts as gone: it has exited and only waits for its parent to reap it)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


# -- preconditions -------------------------------------------------------------------------------

def unavailable_reason() -> Optional[str]:
    """Why namespace hosts cannot be built here, or None when they can."""
    if os.geteuid() != 0:
        return "multi-host tests need root: they create network namespaces, a bridge and sshd processes"
    for tool in ("ip", "unshare", "ssh", "ssh-keygen"):
        if not shutil.which(tool):
            return f"multi-host tests need {tool!r} (iproute2, util-linux, openssh-client)"
    if not Path("/usr/sbin/sshd").exists():
        return "multi-host tests need /usr/sbin/sshd (apt-get install openssh-server)"
    probe = f"{HOST_PREFIX}-probe"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"'ip netns add' is not permitted here: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


# -- teardown (idempotent: also removes what a crashed earlier run left) ------------------------

def cleanup() -> None:
    """Remove every namespace host, the bridge, sshd processes, keys and the config blocks."""
    for name in _netns_names():
        if _OWN_NETNS.fullmatch(name) or name == f"{HOST_PREFIX}-probe":
            _kill_all(netns_pids(name))
            _ip("netns", "del", name, check=False)
    while _SSHD:  # reap the sshd processes this process started
        with contextlib.suppress(subprocess.TimeoutExpired):
            _SSHD.pop().wait(timeout=5)
    _ENTRY_PIDS.clear()
    out = _ip("-o", "link", "show", check=False).stdout
    for line in out.splitlines():
        link = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if _OWN_VETH.fullmatch(link):
            _ip("link", "del", link, check=False)
    if _link_exists(NIC):
        _ip("link", "del", NIC, check=False)
    if ETC_HOSTS.exists():
        text = ETC_HOSTS.read_text(encoding="utf-8")
        if BLOCK_BEGIN in text:
            _write_in_place(ETC_HOSTS, _strip_block(text))
    if SSH_CONFIG.exists():
        text = SSH_CONFIG.read_text(encoding="utf-8")
        if BLOCK_BEGIN in text:
            rest = _strip_block(text)
            if rest.strip():
                _write_in_place(SSH_CONFIG, rest)
            else:
                SSH_CONFIG.unlink()  # it held nothing but our block
    with contextlib.suppress(OSError):
        SSH_DIR.rmdir()  # only succeeds when empty, i.e. we created it
    marker = STATE_DIR / "created-privsep-dir"
    if marker.exists():
        with contextlib.suppress(OSError):
            PRIVSEP_DIR.rmdir()
    shutil.rmtree(STATE_DIR, ignore_errors=True)


# -- setup ---------------------------------------------------------------------------------------

def _keygen(path: Path, comment: str) -> str:
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
    return path.with_suffix(".pub").read_text(encoding="utf-8").strip()


def _sshd_config(host: NamespaceHost, host_dir: Path) -> str:
    return "\n".join([
        f"ListenAddress {host.address}:22",
        f"HostKey {host_dir / 'ssh_host_ed25519_key'}",
        f"PidFile {host_dir / 'sshd.pid'}",
        f"AuthorizedKeysFile {STATE_DIR / 'authorized_keys'}",
        "PermitRootLogin prohibit-password",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",
        "UseDNS no",
        "PrintMotd no",
        "PrintLastLog no",
        # mpirun and horovodrun open one connection per host at once, several while probing.
        "MaxStartups 100",
        "MaxSessions 100",
        "LogLevel ERROR",
        "",
    ])


def _hosts_lines(cluster: HostCluster) -> List[str]:
    lines = [f"{h.address} {h.name}" for h in cluster.hosts]
    return lines + [f"{DOWN_ADDRESS} {DOWN_HOST}", f"{SILENT_ADDRESS} {SILENT_HOST}"]


def _shared_hosts_text() -> str:
    text = ETC_HOSTS.read_text(encoding="utf-8") if ETC_HOSTS.exists() else ""
    return text if not text or text.endswith("\n") else text + "\n"


def _write_host_hosts_file(cluster: HostCluster, host: NamespaceHost, path: Path) -> None:
    """The host's own /etc/hosts: its name on loopback first (first match wins), then everyone's."""
    block = "\n".join([BLOCK_BEGIN, f"{OWN_NAME_ADDRESS} {host.name}", *_hosts_lines(cluster), BLOCK_END]) + "\n"
    path.write_text(_shared_hosts_text() + block, encoding="utf-8")
    path.chmod(0o644)


def _add_blocks(cluster: HostCluster, known_hosts: Path, identity: Path) -> None:
    names = [h.name for h in cluster.hosts] + [DOWN_HOST, SILENT_HOST]
    names += [h.address for h in cluster.hosts] + [DOWN_ADDRESS, SILENT_ADDRESS]  # hosts given by address
    text = _shared_hosts_text()
    block = "\n".join([BLOCK_BEGIN, *_hosts_lines(cluster), BLOCK_END]) + "\n"
    if ETC_HOSTS.exists():
        _write_in_place(ETC_HOSTS, text + block)
    else:
        ETC_HOSTS.write_text(block, encoding="utf-8")

    # ssh takes the first value it finds for an option, so our block goes first.
    ssh_block = "\n".join([
        BLOCK_BEGIN,
        f"Host {' '.join(names)}",
        "    User root",
        f"    IdentityFile {identity}",
        "    IdentitiesOnly yes",
        f"    UserKnownHostsFile {known_hosts}",
        "    StrictHostKeyChecking yes",
        "    LogLevel ERROR",
        BLOCK_END,
        "",
        "",
    ])
    SSH_DIR.mkdir(mode=0o700, exist_ok=True)
    old = SSH_CONFIG.read_text(encoding="utf-8") if SSH_CONFIG.exists() else ""
    if SSH_CONFIG.exists():
        _write_in_place(SSH_CONFIG, ssh_block + old)
    else:
        SSH_CONFIG.write_text(ssh_block, encoding="utf-8")
        SSH_CONFIG.chmod(0o600)


def _start_sshd(host: NamespaceHost, config: Path, hosts_file: Path, log: Path) -> None:
    argv = [
        # nsenter rather than "ip netns exec": the latter remounts /sys for the namespace, which
        # drops the cgroup mounts slurmd needs on a node.
        "nsenter", f"--net=/run/netns/{host.name}", "--",
        "unshare", "--uts", "--mount", "--propagation", "private", "--",
        sys.executable, "-c", _BECOME_HOST_AND_EXEC, host.name, str(hosts_file),
        "/usr/sbin/sshd", "-D", "-e", "-f", str(config),
    ]
    with open(log, "ab") as out:
        # Its own session: Ctrl-C in the test terminal must not kill the hosts before teardown.
        # Every program in the chain execs the next, so this pid ends up being sshd's.
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
    _SSHD.append(proc)
    _ENTRY_PIDS[host.name] = proc.pid


def _wait_for_sshd(cluster: HostCluster) -> None:
    deadline = time.monotonic() + SSHD_READY_TIMEOUT_S
    pending = list(cluster.names)
    last = ""
    while pending and time.monotonic() < deadline:
        for name in list(pending):
            out = cluster.ssh(name, "hostname", timeout=10)
            if out.returncode == 0 and out.stdout.strip() == name:
                pending.remove(name)
            else:
                last = (out.stderr or out.stdout).strip()
        if pending:
            time.sleep(0.2)
    if pending:
        logs = "; ".join(
            (STATE_DIR / n / "sshd.log").read_text(errors="replace").strip() for n in pending
        )
        raise RuntimeError(f"sshd on {', '.join(pending)} did not answer: {last} (sshd log: {logs})")


def create(count: int = 2) -> HostCluster:
    """Build ``count`` namespace hosts with running sshd; call :func:`cleanup` to remove them."""
    if not 1 <= count <= 9:
        raise ValueError("between 1 and 9 hosts")
    cleanup()
    hosts = tuple(NamespaceHost(f"{HOST_PREFIX}{i}", f"{SUBNET}.{10 + i}", f"hvdv{i}") for i in range(1, count + 1))
    cluster = HostCluster(hosts=hosts)
    STATE_DIR.mkdir(mode=0o700, parents=True)
    if not PRIVSEP_DIR.exists():
        PRIVSEP_DIR.mkdir(mode=0o755)
        (STATE_DIR / "created-privsep-dir").touch()
    identity = STATE_DIR / "id_ed25519"
    (STATE_DIR / "authorized_keys").write_text(_keygen(identity, "hvdjob-multihost-tests") + "\n")

    _ip("link", "add", NIC, "type", "bridge")
    _ip("addr", "add", f"{BRIDGE_ADDRESS}/24", "dev", NIC)
    _ip("link", "set", NIC, "up")
    known: List[str] = []
    for host in hosts:
        _ip("netns", "add", host.name)
        _ip("link", "add", host.veth, "type", "veth", "peer", "name", NIC, "netns", host.name)
        _ip("link", "set", host.veth, "master", NIC, "up")
        _ip("-n", host.name, "link", "set", "lo", "up")
        _ip("-n", host.name, "addr", "add", f"{host.address}/24", "dev", NIC)
        _ip("-n", host.name, "link", "set", NIC, "up")
        host_dir = STATE_DIR / host.name
        host_dir.mkdir(mode=0o700)
        public = _keygen(host_dir / "ssh_host_ed25519_key", host.name)
        known.append(f"{host.name},{host.address} {' '.join(public.split()[:2])}")
        config = host_dir / "sshd_config"
        config.write_text(_sshd_config(host, host_dir), encoding="utf-8")
        hosts_file = host_dir / "hosts"
        _write_host_hosts_file(cluster, host, hosts_file)
        _start_sshd(host, config, hosts_file, host_dir / "sshd.log")
    # Only now: enslaving a port can change the bridge's MAC address, which flushes its neighbours.
    _ip("neigh", "replace", SILENT_ADDRESS, "lladdr", NOBODYS_MAC, "dev", NIC, "nud", "permanent")
    known_hosts = STATE_DIR / "known_hosts"
    known_hosts.write_text("\n".join(known) + "\n", encoding="utf-8")
    _add_blocks(cluster, known_hosts, identity)
    _wait_for_sshd(cluster)
    return cluster


@contextlib.contextmanager
def exclusive_lock(timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """One set of namespace hosts per machine at a time (the names and addresses are fixed)."""
    LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK_FILE, "w") as fh:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"another session holds {LOCK_FILE} for more than {timeout_s:.0f} s")
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def namespace_hosts(count: int = 2) -> Iterator[HostCluster]:
    """Context manager: hosts up inside, everything removed on the way out (also on errors)."""
    reason = unavailable_reason()
    if reason:
        raise HostsUnavailable(reason)
    with exclusive_lock():
        try:
            yield create(count)
        finally:
            cleanup()


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["up"]:
        reason = unavailable_reason()
        if reason:
            sys.exit(reason)
        cluster = create(int(args[1]) if len(args) > 1 else 2)
        for h in cluster.hosts:
            print(f"{h.name} {h.address} (ssh {h.name}); remove with: down")
    elif args[:1] == ["down"]:
        cleanup()
    else:
        sys.exit("usage: python -m tests.multihost.hosts_fixture up [N] | down")


if __name__ == "__main__":
    main()
