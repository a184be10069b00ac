"""While a local job runs, no socket of it listens beyond loopback (the job's processes read from /proc).

The job: hvdjob itself (it serves the Gloo rendezvous), the rank supervisors, the ranks, and mpirun
for the MPI data plane. Every listening TCP socket they hold must be bound to 127.0.0.1 or ::1;
the one exception is Open MPI's own out-of-band listener in mpirun, which Open MPI 4.1 binds to
every interface whatever ``oob_tcp_if_include`` says (see the README's note on listening sockets).
"""
from __future__ import annotations

import ipaddress
import json
import os
import time
from pathlib import Path
from typing import Dict, List, Set, Tuple

import pytest

from tests.hvdjob_process import kill_quietly, processes_of_run, start_hvdjob, write_job

pytestmark = pytest.mark.integration
SCRIPTS = Path(__file__).parent / "scripts"
LISTEN = "0A"


def _listening() -> Dict[int, str]:
    """inode -> local address of every listening TCP socket on the machine."""
    found: Dict[int, str] = {}
    for table, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] != LISTEN:
                continue
            hex_addr, hex_port = fields[1].split(":")
            raw = bytes.fromhex(hex_addr)
            if v6:  # four little-endian 32-bit words
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                addr = str(ipaddress.IPv6Address(raw))
            else:
                addr = str(ipaddress.IPv4Address(raw[::-1]))
            found[int(fields[9])] = f"{addr}:{int(hex_port, 16)}"
    return found


def _socket_inodes(pid: int) -> Set[int]:
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    except OSError:
        pass
    return inodes


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def _job_listeners(pids: List[int]) -> List[Tuple[int, str, str]]:
    listening = _listening()
    out = []
    for pid in pids:
        for inode in _socket_inodes(pid):
            if inode in listening:
                out.append((pid, _command(pid), listening[inode]))
    return out


def _is_loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0]
    return ipaddress.ip_address(host).is_loopback


@pytest.mark.parametrize("data_plane", ["gloo", "mpi"])
def test_a_local_job_listens_only_on_loopback(tmp_path: Path, data_plane: str) -> None:
    job = write_job(tmp_path, "job.yaml", f"""
        name: listen
        framework: torch
        script: {SCRIPTS / 'wait_for_go.py'}
        args: ["{tmp_path}"]
        resources: {{np: 2}}
        horovod: {{data_plane: {data_plane}}}
        """)
    run_dir = tmp_path / "run"
    proc = start_hvdjob("run", str(job), "--run-dir", str(run_dir), cwd=tmp_path)
    pids: List[int] = []
    try:
        deadline = time.time() + 180
        while not all((tmp_path / f"ready.{r}").exists() for r in (0, 1)):
            assert proc.poll() is None, proc.communicate()
            assert time.time() < deadline, "ranks did not start"
            time.sleep(0.2)
        plan = json.loads((run_dir / "plan.json").read_text())
        assert plan["launcher"] == ("mpi" if data_plane == "mpi" else "local")
        pids = [proc.pid] + processes_of_run(plan["run_id"])
        listeners = _job_listeners(pids)
        if data_plane == "gloo":  # hvdjob's rendezvous server is one of them
            assert any(pid == proc.pid for pid, _, _ in listeners), listeners
        beyond = [item for item in listeners if not _is_loopback(item[2])]
        allowed = [item for item in beyond if item[1] == "mpirun" and data_plane == "mpi"]
        assert beyond == allowed, f"listening beyond loopback: {beyond}"
        (tmp_path / "go").touch()
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert out.count("sum=2.0") == 2, out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        kill_quietly([p for p in pids if p != proc.pid])
