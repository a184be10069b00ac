"""kill -9 of hvdjob during a multi-host job: nothing of the job is left on any host 10 s later.

As in test_multihost_stop.py, hvdjob runs in a PID namespace of its own, so that, like on a cluster,
it cannot see the remote ranks (and neither can they see it: its pid and start time mean nothing on
the other hosts). Only mpirun's daemons, ssh sessions ending and the rank supervisors' own watch of
their parent can end the remote ranks. hvdjob is not the namespace's pid 1 here (that one would take
every process of the namespace with it): a small waiter is, so mpirun and horovodrun outlive hvdjob
unless hvdjob's death ends them.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import pytest

from tests.hvdjob_process import hvdjob_argv, kill_quietly, processes_of_run, write_job
from tests.multihost.hosts_fixture import HostCluster

pytestmark = pytest.mark.multihost
SLEEPY = Path(__file__).resolve().parents[1] / "integration" / "scripts" / "sleepy_torch.py"
READY_TIMEOUT_S = 120
ORPHAN_LIMIT_S = 10.0
WAITER = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"


def _children(pid: int) -> List[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="utf-8") as fh:
            return [int(p) for p in fh.read().split()]
    except OSError:
        return []


def _hvdjob_below(root: int) -> int:
    """The ``python -m hvdrun_cli run`` process below ``root`` (not unshare or the waiter, whose
    command lines contain it too)."""
    todo = [root]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                argv = fh.read().split(b"\0")
        except OSError:
            argv = []
        if argv[1:4] == [b"-m", b"hvdrun_cli", b"run"]:
            return pid
        todo += _children(pid)
    raise AssertionError(f"no hvdjob process below {root}")


@pytest.mark.parametrize("launcher", ["mpi", "gloo"])
def test_kill_9_of_hvdjob_leaves_nothing_on_any_host(ns_hosts: HostCluster, tmp_path: Path, launcher: str) -> None:
    job = write_job(tmp_path, "job.yaml", f"""
        name: orphans
        framework: torch
        script: {SLEEPY}
        launcher: {launcher}
        resources: {{hosts: [hvdhost1:2, hvdhost2:2]}}
        """)
    argv = ["unshare", "--pid", "--fork", "--mount-proc", "--", sys.executable, "-c", WAITER,
            *hvdjob_argv("run", str(job))]
    proc = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_id = ""
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        seen = ""
        assert proc.stdout is not None
        while time.monotonic() < deadline and seen.count(" ready") < 4:
            line = proc.stdout.readline()
            if not line:
                break
            seen += line
        assert seen.count(" ready") == 4, seen
        run_id = next(p.name for p in (tmp_path / "runs" / "orphans").iterdir() if p.name != "latest")
        on_hosts = [pid for host in ("hvdhost1", "hvdhost2") for pid in ns_hosts.pids(host)]
        assert len(set(processes_of_run(run_id)) & set(on_hosts)) == 8  # 4 supervisors, 4 ranks

        hvdjob = _hvdjob_below(proc.pid)
        subprocess.run(["kill", "-KILL", str(hvdjob)], check=True)
        killed_at = time.monotonic()
        left = processes_of_run(run_id)
        while left and time.monotonic() - killed_at < ORPHAN_LIMIT_S:
            time.sleep(0.2)
            left = processes_of_run(run_id)
        took = time.monotonic() - killed_at
        assert left == [], f"{len(left)} process(es) of the job alive {took:.0f} s after kill -9 of hvdjob"
        print(f"kill -9 of hvdjob ({launcher}, 2 hosts x 2 ranks): nothing left after {took:.2f} s")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        if run_id:
            kill_quietly(processes_of_run(run_id))
