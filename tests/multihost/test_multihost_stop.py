"""Ctrl-C on a multi-host job stops the ranks on every host, as the README promises.

On a real cluster hvdjob cannot see the other machines' processes, so only the launcher (mpirun,
horovodrun) and the ranks' own supervisors can stop remote ranks. The namespace hosts share this
machine's process table, where hvdjob's final sweep (every process carrying the run's
``HVDJOB_RUN_ID``) would reach them and hide a launcher that leaves them behind. So hvdjob runs here
in a PID namespace of its own: like on a cluster, it sees only its own processes.
"""
from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import List

import pytest

from tests.hvdjob_process import Finished, hvdjob_argv, kill_quietly, processes_of_run, write_job
from tests.multihost.hosts_fixture import HostCluster

pytestmark = pytest.mark.multihost
SLEEPY = Path(__file__).resolve().parents[1] / "integration" / "scripts" / "sleepy_torch.py"
READY_TIMEOUT_S = 120
STOP_TIMEOUT_S = 60
SETTLE_S = 10  # remote ranks get this long after hvdjob returns to be gone


def _children(pid: int) -> List[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="utf-8") as fh:
            return [int(p) for p in fh.read().split()]
    except OSError:
        return []


def _leftovers(run_id: str) -> List[int]:
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        left = processes_of_run(run_id)
        if not left:
            return []
        time.sleep(0.5)
    return processes_of_run(run_id)


@pytest.mark.parametrize("launcher", ["mpi", "gloo"])
def test_ctrl_c_stops_the_ranks_on_every_host(ns_hosts: HostCluster, tmp_path: Path, launcher: str) -> None:
    job = write_job(
        tmp_path,
        "job.yaml",
        f"""
        name: stopme
        framework: torch
        script: {SLEEPY}
        launcher: {launcher}
        resources: {{hosts: [hvdhost1:2, hvdhost2:2]}}
        """,
    )
    argv = ["unshare", "--pid", "--fork", "--mount-proc", "--", *hvdjob_argv("run", str(job))]
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
        run_id = next(p.name for p in (tmp_path / "runs" / "stopme").iterdir() if p.name != "latest")
        on_hosts = [pid for host in ("hvdhost1", "hvdhost2") for pid in ns_hosts.pids(host)]
        assert len(set(processes_of_run(run_id)) & set(on_hosts)) == 8  # 4 supervisors, 4 ranks
        (hvdjob,) = _children(proc.pid)  # unshare's child: hvdjob, pid 1 of its namespace
        started = time.monotonic()
        subprocess.run(["kill", "-INT", str(hvdjob)], check=True)
        out, err = proc.communicate(timeout=STOP_TIMEOUT_S)
        finished = Finished(proc.returncode, seen + out, err)
        assert finished.returncode == 128 + signal.SIGINT, finished.output
        assert "job stopped on SIGINT" in finished.stderr
        left = _leftovers(run_id)
        assert left == [], (
            f"{len(left)} process(es) of the job still run on the hosts "
            f"{time.monotonic() - started:.0f} s after Ctrl-C"
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        if run_id:
            kill_quietly(processes_of_run(run_id))
