"""A host cut off the network in the middle of a 4-rank job: the job ends in seconds, naming it.

The root-namespace end of hvdhost2's veth is taken down, so hvdhost2 is still running but nothing
reaches it and nothing comes back: no RST, every connection stalls, as with a pulled cable or a
switch port gone dead. Without help mpirun waits for ever and Gloo blames a healthy rank after
its timeout; hvdjob's host watch must end the job within 60 s with a final line naming hvdhost2,
and the supervisors on hvdhost2 must stop their ranks although nothing can reach them.

As in test_multihost_stop.py, hvdjob runs in a PID namespace of its own, so its final sweep (every
process carrying the run id) cannot reach the hosts' processes: like on a cluster, only the
launchers and the supervisors' own watches can end them. The veth comes back up in a ``finally``;
after that no process other than each host's sshd may be left on any host.

With ``restarts: 1`` and a spare host, the next attempt leaves hvdhost2 out, runs on hvdhost1 and
hvdhost3, resumes from the newest checkpoint and completes.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import pytest
import yaml

from tests.hvdjob_process import hvdjob_argv, kill_quietly, processes_of_run
from tests.multihost.hosts_fixture import _ENTRY_PIDS, HostCluster

pytestmark = pytest.mark.multihost
SLEEPY = Path(__file__).resolve().parents[1] / "integration" / "scripts" / "sleepy_torch.py"
SLOW_MODEL = Path(__file__).resolve().parents[1] / "reliability" / "slow_model.py"
CUT = "hvdhost2"
END_LIMIT_S = 60.0  # the bound: cut to the end of hvdjob
SETTLE_S = 30.0  # after the veth is back up, the cut host's leftovers (ssh session, orted) get this long
READY_TIMEOUT_S = 240  # 4 ranks importing torch on a shared 2-core box: a minute or more to the first step
CHECKPOINT_SAVED = r"^\[0\] hvdjob: checkpoint saved: .*ckpt-0*(\d+)\.pt$"
PROGRESS = r"^\[0\] epoch \d+/\d+ step (\d+)/"


@dataclass
class RunningJob:
    """``hvdjob run`` in its own PID namespace, output in files (never blocks on a pipe)."""

    proc: subprocess.Popen
    out: Path
    err: Path

    @property
    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float, after: int = 0) -> Tuple[re.Match, float]:
        regex = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.stdout + "\n" + self.stderr
            match = regex.search(text, after)
            if match:
                return match, time.monotonic()
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{pattern!r} not seen:\n{(self.stdout + self.stderr)[-4000:]}")

    def wait_for_count(self, pattern: str, count: int, timeout: float) -> None:
        regex = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while len(regex.findall(self.stdout)) < count:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"{count} x {pattern!r} not seen:\n{(self.stdout + self.stderr)[-4000:]}")
            time.sleep(0.1)

    def run_id(self) -> str:
        match, _ = self.wait_for(r": run directory (\S+)", 60)
        return Path(match.group(1)).name


def _start(tmp_path: Path, job: Path) -> RunningJob:
    out, err = tmp_path / "hvdjob.out", tmp_path / "hvdjob.err"
    argv = ["unshare", "--pid", "--fork", "--mount-proc", "--", *hvdjob_argv("run", str(job))]
    with open(out, "wb") as fo, open(err, "wb") as fe:
        proc = subprocess.Popen(argv, cwd=tmp_path, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL)
    return RunningJob(proc, out, err)


def _veth(cluster: HostCluster, name: str) -> str:
    return next(h.veth for h in cluster.hosts if h.name == name)


def _set_link(veth: str, state: str) -> None:
    subprocess.run(["ip", "link", "set", veth, state], check=True, capture_output=True, timeout=30)


def _run_processes_on_hosts(cluster: HostCluster, run_id: str) -> Dict[str, List[int]]:
    ours = set(processes_of_run(run_id))
    return {h: sorted(ours & set(cluster.pids(h))) for h in cluster.names}


def _non_sshd_processes(cluster: HostCluster, before: Optional[Dict[str, List[int]]] = None) -> Dict[str, List[int]]:
    """Everything running on each host but its sshd (ssh sessions, orted, supervisors, ranks), leaving out
    what ran there ``before`` the job (another fixture's daemons, e.g. the 2-node Slurm's slurmd)."""
    return {h: sorted(set(cluster.pids(h)) - {_ENTRY_PIDS[h]} - set((before or {}).get(h, ())))
            for h in cluster.names}


def _wait_until_empty(probe, timeout_s: float) -> Tuple[Dict[str, List[int]], float]:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    left = probe()
    while any(left.values()) and time.monotonic() - started < timeout_s:
        time.sleep(0.5)
        left = probe()
    return left, time.monotonic() - started


def _end_job_and_reconnect(job, cut_guard: List[str], cluster: HostCluster,  # type: ignore[no-untyped-def]
                           before_job: Dict[str, List[int]], run_id: str
                           ) -> Tuple[Dict[str, List[int]], float, float]:
    """A test's cleanup: end hvdjob if it still runs, bring the cut veths back up, and wait for the hosts
    to hold nothing of the job. Returns what is left, how long that took, and when the veths came up."""
    if job.proc.poll() is None:
        job.proc.kill()
        job.proc.wait(timeout=30)
    for veth in cut_guard:
        _set_link(veth, "up")
    up_at = time.monotonic()
    cut_guard.clear()
    left, settled_s = _wait_until_empty(lambda: _non_sshd_processes(cluster, before_job), SETTLE_S)
    if run_id:
        kill_quietly(processes_of_run(run_id))
    return left, settled_s, up_at


@pytest.fixture
def cut_guard(ns_hosts: HostCluster) -> Iterator[List[str]]:
    """Veths a test took down; brought back up whatever happens."""
    down: List[str] = []
    yield down
    for veth in down:
        _set_link(veth, "up")


def _final_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    return lines[-1] if lines else ""


@pytest.mark.parametrize("launcher, restarts", [("mpi", 0), ("gloo", 0), ("mpi", 1)],
                         ids=["mpirun", "horovodrun", "mpirun-restarts-1-no-spare-host"])
def test_cut_host_ends_the_job_within_60_s_naming_it_and_nothing_is_left(
    ns_hosts: HostCluster, tmp_path: Path, cut_guard: List[str], launcher: str, restarts: int
) -> None:
    """With ``restarts: 1`` but no spare host, the job is not restarted on the hosts that are left."""
    job_file = tmp_path / "job.yaml"
    job_file.write_text(yaml.safe_dump({
        "name": "cut", "framework": "torch", "script": str(SLEEPY), "launcher": launcher, "restarts": restarts,
        "resources": {"hosts": ["hvdhost1:2", f"{CUT}:2"]},
    }))
    before_job = _non_sshd_processes(ns_hosts)
    job = _start(tmp_path, job_file)
    run_id = ""
    try:
        job.wait_for_count(r"^\[\d\] rank \d ready$", 4, READY_TIMEOUT_S)  # every rank is in its allreduce loop
        run_id = job.run_id()
        before = _run_processes_on_hosts(ns_hosts, run_id)
        assert len(before["hvdhost1"]) == 4 and len(before[CUT]) == 4, before  # 2 supervisors + 2 ranks each

        veth = _veth(ns_hosts, CUT)
        cut_guard.append(veth)
        _set_link(veth, "down")
        cut_at = time.monotonic()
        ended_s: Optional[float] = None
        stopped_s: Optional[float] = None  # when no process of the job was left on the cut host
        while ended_s is None or stopped_s is None:
            now = time.monotonic() - cut_at
            if ended_s is None and job.proc.poll() is not None:
                ended_s = now
            if stopped_s is None and not _run_processes_on_hosts(ns_hosts, run_id)[CUT]:
                stopped_s = now
            if now > END_LIMIT_S:
                break
            time.sleep(0.2)
        assert ended_s is not None, (f"hvdjob still running {END_LIMIT_S:.0f} s after {CUT} was cut off:\n"
                                     f"{(job.stdout + job.stderr)[-3000:]}")
        code = job.proc.returncode
        # Still cut off: the supervisors there stopped their ranks on their own (nothing could reach them).
        while_cut = _run_processes_on_hosts(ns_hosts, run_id)

        final = _final_line(job.stderr)
        assert code == 1, job.stdout[-2000:] + job.stderr[-2000:]
        if restarts:
            assert re.search(r"^hvdjob: attempt 1 of 2 failed .*: job failed: lost contact with host hvdhost2: .*; "
                             r"ranks 2, 3 ran there$", job.stdout, re.M), job.stdout[-2000:]
            assert final == ("hvdjob: job failed: not restarted after attempt 1 of 2: cannot restart without hvdhost2 "
                             "(lost): the other hosts have 2 slots for 4 ranks (left: hvdhost1:2); list a spare host "
                             "in resources.hosts or lower resources.np"), final
        else:
            assert final.startswith("hvdjob: job failed: lost contact with host hvdhost2: no answer from "), final
            assert final.endswith("; ranks 2, 3 ran there"), final
            assert "hvdhost1" not in final  # the healthy host is not blamed
        assert "Traceback" not in job.stderr
        assert while_cut == {h: [] for h in ns_hosts.names}, f"job processes left while {CUT} is cut off: {while_cut}"
        result = json.loads(next((tmp_path / "runs" / "cut").glob("*/result.json")).read_text())
        assert result["exit_code"] == 1 and result["failed_rank"] == 2
    finally:
        left, settled_s, up_at = _end_job_and_reconnect(job, cut_guard, ns_hosts, before_job, run_id)
    assert left == {h: [] for h in ns_hosts.names}, f"left {time.monotonic() - up_at:.0f} s after the veth came back: {left}"
    print(f"\n{launcher}, restarts: {restarts}: {CUT} cut off -> hvdjob ended {ended_s:.1f} s later (exit {code}); "
          f"the ranks and supervisors on {CUT} stopped {stopped_s:.1f} s after the cut (still cut off); "
          f"nothing but sshd on any host {settled_s:.1f} s after the veth came back")


def test_restart_leaves_the_lost_host_out_and_resumes_from_the_checkpoint(
    ns_hosts: HostCluster, tmp_path: Path, cut_guard: List[str]
) -> None:
    shutil.copy(SLOW_MODEL, tmp_path / "slow_model.py")  # next to the spec: the ranks import it from there
    job_file = tmp_path / "job.yaml"
    job_file.write_text(yaml.safe_dump({
        "name": "spare", "framework": "torch", "launcher": "mpi", "restarts": 1,
        "resources": {"hosts": ["hvdhost1:2", f"{CUT}:2", "hvdhost3:2"], "np": 4},
        "train": {"model": "slow_model:mlp", "model_args": {"delay": 0.05}, "data": "digits", "epochs": 6,
                  "batch_size": 32, "lr": 0.05, "momentum": 0.9, "log_interval": 5, "seed": 7,
                  "deterministic": True, "validate": False},
        "checkpoint": {"interval_steps": 10, "keep": 3},
    }, sort_keys=False))
    before_job = _non_sshd_processes(ns_hosts)
    job = _start(tmp_path, job_file)
    run_id = ""
    try:
        saved, _ = job.wait_for(CHECKPOINT_SAVED, READY_TIMEOUT_S)
        saved_step = int(saved.group(1))
        run_id = job.run_id()
        assert len(_run_processes_on_hosts(ns_hosts, run_id)[CUT]) == 4  # ranks 2, 3 and their supervisors

        veth = _veth(ns_hosts, CUT)
        cut_guard.append(veth)
        _set_link(veth, "down")
        cut_at = time.monotonic()
        failed, failed_at = job.wait_for(r"^hvdjob: attempt 1 of 2 failed.*lost contact with host hvdhost2", 60)
        leaving, _ = job.wait_for(r"^hvdjob: leaving out hvdhost2 \(lost\); ranks on hvdhost1, hvdhost3$", 60)
        resumed, _ = job.wait_for(r"^\[0\] hvdjob: resumed from \S+ at step (\d+)", READY_TIMEOUT_S)
        _, first_step_at = job.wait_for(PROGRESS, READY_TIMEOUT_S, after=resumed.end())
        code = job.proc.wait(timeout=300)
        stdout = job.stdout

        assert code == 0, stdout[-3000:] + job.stderr[-3000:]
        resumed_step = int(resumed.group(1))
        assert resumed_step >= saved_step and resumed_step % 10 == 0
        plan = json.loads(next((tmp_path / "runs" / "spare").glob("*/plan.json")).read_text())
        assert plan["attempt"] == 1
        assert [s["hostname"] for s in plan["layout"]] == ["hvdhost1", "hvdhost1", "hvdhost3", "hvdhost3"]
        summary = json.loads(next((tmp_path / "runs" / "spare").glob("*/summary.json")).read_text())
        assert summary["status"] == "completed" and summary["attempt"] == 1
        assert summary["resumed_from_step"] == resumed_step
        run_dir = next((tmp_path / "runs" / "spare").glob("*/plan.json")).parent
        for rank in (2, 3):  # each rank's log: first started on hvdhost2, then on hvdhost3
            starts = re.findall(r"^hvdjob: rank \d started \(pid \d+ on (\S+?)\)", (run_dir / f"rank.{rank}.log").read_text(),
                                re.M)
            assert starts == [CUT, "hvdhost3"], (rank, starts)
        assert _run_processes_on_hosts(ns_hosts, run_id) == {h: [] for h in ns_hosts.names}
    finally:
        left, _, _ = _end_job_and_reconnect(job, cut_guard, ns_hosts, before_job, run_id)
    assert left == {h: [] for h in ns_hosts.names}, f"left after the veth came back: {left}"
    print(f"\nmpi, restarts: 1, spare host: {CUT} cut at step >= {saved_step} -> attempt 1 failed "
          f"{failed_at - cut_at:.1f} s later; first step after the relaunch on hvdhost1+hvdhost3 "
          f"{first_step_at - cut_at:.1f} s after the cut (resumed at step {resumed_step}); job completed")
