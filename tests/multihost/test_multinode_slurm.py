"""The HPC path across nodes: ``hvdjob submit``/``run`` on a 2-node Slurm made of namespace hosts.

Each node is a namespace host with its own name, address and ``/etc/hosts`` (where its own name
resolves to 127.0.1.1, as on many clusters); slurmctld runs on this machine's bridge address and
one slurmd inside each host (see slurm_nodes.py). So the batch script runs on hvdhost1, srun starts
ranks on both nodes, and hvdjob's Gloo rendezvous on hvdhost1 must be reached from hvdhost2.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import pytest

from hvdrun_cli.contract import PLAN_FILE
from tests.multihost.hosts_fixture import HostCluster
from tests.multihost.slurm_nodes import CPUS_PER_NODE
from tests.slurm_cluster import SlurmCluster

pytestmark = [pytest.mark.multihost, pytest.mark.slurm]

SCRIPT = Path(__file__).parent / "scripts" / "where_torch.py"
WHERE = re.compile(
    r"rank=(?P<rank>\d+) size=(?P<size>\d+) local_rank=(?P<local_rank>\d+) local_size=(?P<local_size>\d+) "
    r"cross_rank=(?P<cross_rank>\d+) cross_size=(?P<cross_size>\d+) host=(?P<host>\S+) "
    r"sum=(?P<sum>[0-9.]+) params=(?P<params>[0-9a-f]+)"
)
ENDED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED")
SLURM_2X2 = ["slurm:", "  partition: debug", '  time: "00:15:00"', "  nodes: 2", f"  ntasks_per_node: {CPUS_PER_NODE}"]


def hvdjob(cluster: SlurmCluster, cwd: Path, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hvdrun_cli", *args], cwd=cwd, env=cluster.env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def submit(cluster: SlurmCluster, cwd: Path, spec: Path, *flags: str) -> str:
    done = hvdjob(cluster, cwd, "submit", str(spec), *flags)
    assert done.returncode == 0, done.stdout + done.stderr
    match = re.search(r"^submitted job (\d+)", done.stdout, re.M)
    assert match, done.stdout
    return match.group(1)


def output_of(cluster: SlurmCluster, cwd: Path, job_id: str) -> str:
    out = hvdjob(cluster, cwd, "logs", job_id)
    err = hvdjob(cluster, cwd, "logs", job_id, "--stderr")
    return f"--- stdout ---\n{out.stdout}\n--- stderr ---\n{err.stdout}{err.stderr}"


def wait_ended(cluster: SlurmCluster, job_id: str, timeout: float) -> str:
    return cluster.wait_for_state(job_id, ENDED, timeout=timeout)


def write(path: Path, lines: List[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def ranks_reported(text: str) -> Dict[int, Dict[str, str]]:
    return {int(m["rank"]): m.groupdict() for m in WHERE.finditer(text)}


def assert_two_by_two(ranks: Dict[int, Dict[str, str]], details: str) -> None:
    """Ranks 0-1 on hvdhost1, 2-3 on hvdhost2, as Horovod itself reports them; one set of parameters."""
    assert sorted(ranks) == [0, 1, 2, 3], details
    for rank, got in ranks.items():
        node, local = divmod(rank, CPUS_PER_NODE)
        assert got["host"] == f"hvdhost{node + 1}", details
        assert (int(got["local_rank"]), int(got["local_size"])) == (local, CPUS_PER_NODE), details
        assert (int(got["cross_rank"]), int(got["cross_size"])) == (node, 2), details
        assert int(got["size"]) == 4 and float(got["sum"]) == 10.0, details
    assert len({r["params"] for r in ranks.values()}) == 1, "parameters differ between ranks\n" + details


def node_processes(hosts: HostCluster, marker: str) -> Dict[str, List[int]]:
    """Per node, the processes whose environment carries ``marker`` (e.g. HVDJOB_RUN_ID=...)."""
    wanted = marker.encode()
    found: Dict[str, List[int]] = {}
    for host in hosts.names:
        for pid in hosts.pids(host):
            try:
                environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if wanted in environ:
                found.setdefault(host, []).append(pid)
    return found


def test_submitted_job_runs_two_ranks_on_each_node(ns_slurm: SlurmCluster, ns_hosts: HostCluster, tmp_path: Path) -> None:
    spec = write(tmp_path / "where.yaml", ["framework: torch", "name: where", f"script: {SCRIPT}", *SLURM_2X2])
    started = time.monotonic()
    job_id = submit(ns_slurm, tmp_path, spec)
    state = wait_ended(ns_slurm, job_id, timeout=300)
    details = output_of(ns_slurm, tmp_path, job_id)
    assert state == "COMPLETED", details
    print(f"2-node submit: job {job_id} done in {time.monotonic() - started:.1f} s")
    assert_two_by_two(ranks_reported(details), details)
    plan = json.loads(next((tmp_path / "runs" / "where").glob("*/plan.json")).read_text())
    assert plan["launcher"] == "srun", plan["notes"]
    assert plan["rendezvous"]["addr"] == ns_hosts.hosts[0].address  # not hvdhost1's 127.0.1.1
    # Placement through srun: the dry run's block for each rank is what the rank runs on.
    usable = sorted(os.sched_getaffinity(0))  # what every node's tasks see here (TaskPlugin=task/none)
    block = len(usable) // CPUS_PER_NODE
    cpus = {int(m[1]): m[2] for m in re.finditer(r"rank=(\d+) .* cpus=(\S+)", details)}
    for slot in plan["layout"]:
        local = slot["local_rank"]
        assert slot["cpus"] == (f"allocated CPU #{local} of {CPUS_PER_NODE} on {slot['hostname']} (1 per rank)"), plan
        assert cpus[slot["rank"]] == ",".join(map(str, usable[local * block:(local + 1) * block])), details


def test_run_inside_a_hand_written_batch_script_reaches_the_rendezvous_from_the_other_node(
    ns_slurm: SlurmCluster, ns_hosts: HostCluster, tmp_path: Path
) -> None:
    spec = write(tmp_path / "where.yaml", ["framework: torch", "name: byhand", f"script: {SCRIPT}"])
    batch = write(tmp_path / "job.sh", [
        "#!/bin/bash",
        "#SBATCH --nodes=2 --ntasks-per-node=2 --time=00:10:00",
        f"#SBATCH --output={tmp_path}/out.txt",
        f"exec {sys.executable} -m hvdrun_cli run {spec}",
    ])
    done = ns_slurm.run(["sbatch", "--parsable", f"--chdir={tmp_path}", str(batch)], check=False)
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip().split(";")[0]
    state = wait_ended(ns_slurm, job_id, timeout=300)
    text = (tmp_path / "out.txt").read_text()
    assert state == "COMPLETED", text
    assert_two_by_two(ranks_reported(text), text)
    plan = json.loads(next((tmp_path / "runs" / "byhand").glob("*/plan.json")).read_text())
    assert plan["env"]["HOROVOD_GLOO_RENDEZVOUS_ADDR"] == ns_hosts.hosts[0].address, plan["env"]


def _training_spec(path: Path, name: str, max_steps: int, dump: Path, requeue: int = 0, gloo_timeout_s: int = 30) -> Path:
    return write(path, [
        "framework: torch", f"name: {name}",
        f"train: {{data: digits, epochs: 1000, max_steps: {max_steps}, batch_size: 16, log_interval: 20, validate: false}}",
        "checkpoint: {interval_steps: 20}",
        # No tensor fusion: with 4 ranks the order of a float sum depends on where a tensor falls in a
        # ring chunk, and fusion groups tensors by timing; unfused, every run sums in the same order.
        f"env: {{HVDJOB_PARAM_DUMP: {dump}, OMP_NUM_THREADS: '1', HOROVOD_FUSION_THRESHOLD: '0', "
        f"HOROVOD_GLOO_TIMEOUT_SECONDS: '{gloo_timeout_s}'}}",
        *SLURM_2X2, f"  requeue: {requeue}",
    ])


def _final_parameters(dump: Path) -> List[np.ndarray]:
    return [np.load(dump / f"rank{r}.npy") for r in range(4)]


def _wait_for_checkpoint(cluster: SlurmCluster, cwd: Path, name: str, job_id: str, timeout: float = 300) -> float:
    checkpoints = cwd / "runs" / name / "checkpoints"
    deadline = time.monotonic() + timeout
    while not list(checkpoints.glob("ckpt-*.json")):
        assert time.monotonic() < deadline, "no checkpoint written\n" + output_of(cluster, cwd, job_id)
        assert cluster.job_state(job_id) in ("PENDING", "CONFIGURING", "RUNNING"), output_of(cluster, cwd, job_id)
        time.sleep(0.2)
    return time.monotonic()


@pytest.mark.timeout(1500)  # two 4-rank trainings on 2 shared cores
def test_preempted_two_node_job_requeues_and_resumes_to_the_uninterrupted_parameters(
    ns_slurm: SlurmCluster, tmp_path: Path
) -> None:
    max_steps = 160
    reference = tmp_path / "reference"
    reference.mkdir()
    job_id = submit(ns_slurm, reference, _training_spec(reference / "train.yaml", "train", max_steps, reference / "params"))
    assert wait_ended(ns_slurm, job_id, timeout=600) == "COMPLETED", output_of(ns_slurm, reference, job_id)
    uninterrupted = _final_parameters(reference / "params")

    preempted = tmp_path / "preempted"
    preempted.mkdir()
    job_id = submit(ns_slurm, preempted,
                    _training_spec(preempted / "train.yaml", "train", max_steps, preempted / "params", requeue=1))
    _wait_for_checkpoint(ns_slurm, preempted, "train", job_id)
    # What a preempting scheduler does (PreemptMode=REQUEUE): signal every step, requeue the job.
    requeued_at = time.monotonic()
    ns_slurm.run(["scontrol", "requeue", job_id])
    state = wait_ended(ns_slurm, job_id, timeout=600)
    details = output_of(ns_slurm, preempted, job_id)
    assert state == "COMPLETED", details
    run_dirs = [p.parent for p in sorted((preempted / "runs" / "train").glob(f"*/{PLAN_FILE}"))
                if not p.parent.is_symlink()]
    # Two attempts, each its own run directory. The first has a summary only when its ranks won the race
    # against srun, which answers the batch step's SIGTERM by SIGKILLing its tasks: what must hold is that
    # the requeued attempt resumed from a checkpoint and finished.
    assert len(run_dirs) == 2, details
    second = json.loads((run_dirs[-1] / "summary.json").read_text())
    assert 0 < second["resumed_from_step"] < max_steps and second["steps"] == max_steps, details
    assert second["world_size"] == 4
    print(f"2-node requeue: resumed at step {second['resumed_from_step']}, "
          f"second run's first step {second['first_step_unix_time'] - time.time() + (time.monotonic() - requeued_at):.1f} s after the requeue")
    resumed = _final_parameters(preempted / "params")
    for rank in range(4):
        np.testing.assert_array_equal(resumed[rank], resumed[0])
        np.testing.assert_array_equal(resumed[rank], uninterrupted[0])


def test_status_logs_and_cancel_of_a_two_node_job(ns_slurm: SlurmCluster, ns_hosts: HostCluster, tmp_path: Path) -> None:
    (tmp_path / "wait.py").write_text(
        "import os, socket, time\n"
        "print('task', os.environ['SLURM_PROCID'], 'on', socket.gethostname(), flush=True)\n"
        "time.sleep(600)\n"
    )
    spec = write(tmp_path / "wait.yaml", ["framework: torch", "name: waiting", "script: wait.py", *SLURM_2X2])
    job_id = submit(ns_slurm, tmp_path, spec)
    ns_slurm.wait_for_state(job_id, ["RUNNING"], timeout=120)
    deadline = time.monotonic() + 120
    while (text := hvdjob(ns_slurm, tmp_path, "logs", job_id).stdout).count("task ") < 4:
        assert time.monotonic() < deadline, text
        time.sleep(0.5)
    for task, node in ((0, 1), (1, 1), (2, 2), (3, 2)):
        assert f"task {task} on hvdhost{node}" in text, text
    status = hvdjob(ns_slurm, tmp_path, "status", "--json")
    assert status.returncode == 0, status.stderr
    (job,) = [j for j in json.loads(status.stdout) if str(j.get("job_id")) == job_id]
    assert job["state"] == "RUNNING"
    assert "hvdhost[1-2]" in json.dumps(job) or {"hvdhost1", "hvdhost2"} <= set(json.dumps(job).split('"')), job
    cancelled = hvdjob(ns_slurm, tmp_path, "cancel", job_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert ns_slurm.wait_for_state(job_id, ENDED, timeout=60) == "CANCELLED"
    marker = f"SLURM_JOB_ID={job_id}"
    deadline = time.monotonic() + 30
    while (left := node_processes(ns_hosts, marker)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, f"processes of job {job_id} still running: {left}"


def _set_link(hosts: HostCluster, host: str, up: bool) -> None:
    veth = next(h.veth for h in hosts.hosts if h.name == host)
    subprocess.run(["ip", "link", "set", veth, "up" if up else "down"], check=True, timeout=10)


def _node_state(cluster: SlurmCluster, node: str) -> str:
    return cluster.run(["sinfo", "-h", "-N", "-n", node, "-o", "%t"], check=False).stdout.strip()


def _wait_until_not_running(cluster: SlurmCluster, job_id: str, timeout: float) -> str:
    """The job's state once it left RUNNING: ended, or back in the queue (Slurm requeues a batch job
    whose node failed when the cluster has JobRequeue=1, as this one and many sites do)."""
    deadline = time.monotonic() + timeout
    state = cluster.job_state(job_id) or ""
    while state in ("RUNNING", "CONFIGURING", "COMPLETING", "") and time.monotonic() < deadline:
        time.sleep(0.5)
        state = cluster.job_state(job_id) or ""
    return state


# Who notices first: Slurm (its node stops answering pings: SlurmdTimeout, 20 s here, 300 s by default)
# or the surviving ranks (Gloo gives up on a send or receive to the silent node after its timeout).
# Either way the job must end, naming the node: by Slurm's "Node failure", or by hvdjob, which sees
# only timeouts on the healthy ranks and no end from the ranks of the lost node.
NAMED_BY = {
    "slurm": (120, r"(?i)node failure on {lost}|failure of node {lost}|{lost}.*(?:fail|not respond)"),
    "hvdjob": (8, r"job failed: host {lost} stopped responding \(ranks 2, 3 ran there"),
}


@pytest.mark.parametrize("noticed_by", sorted(NAMED_BY))
def test_a_node_lost_mid_job_ends_the_job_within_a_minute_naming_it(
    ns_slurm: SlurmCluster, ns_hosts: HostCluster, tmp_path: Path, noticed_by: str
) -> None:
    gloo_timeout_s, named = NAMED_BY[noticed_by]
    spec = _training_spec(tmp_path / "lost.yaml", "lost", 100000, tmp_path / "params", gloo_timeout_s=gloo_timeout_s)
    job_id = submit(ns_slurm, tmp_path, spec)
    _wait_for_checkpoint(ns_slurm, tmp_path, "lost", job_id)
    lost = ns_hosts.hosts[1].name
    cut_at = time.monotonic()
    _set_link(ns_hosts, lost, up=False)
    try:
        state = _wait_until_not_running(ns_slurm, job_id, timeout=90)
        took = time.monotonic() - cut_at
    finally:
        _set_link(ns_hosts, lost, up=True)
    ns_slurm.run(["scancel", job_id], check=False)  # a requeued copy must not start again
    details = output_of(ns_slurm, tmp_path, job_id)
    reason = ns_slurm.run(["scontrol", "show", "job", job_id], check=False).stdout
    print(f"node loss: job {job_id} left RUNNING ({state}) {took:.1f} s after {lost} was cut off")
    assert took < 60, details
    assert state not in ("RUNNING", "COMPLETED"), details
    assert re.search(named.format(lost=lost), details + reason), details + reason
    # Once the node is back, nothing of the job may survive on either node.
    deadline = time.monotonic() + 90
    marker = f"SLURM_JOB_ID={job_id}"
    while (left := node_processes(ns_hosts, marker)) and time.monotonic() < deadline:
        time.sleep(1)
    assert not left, f"processes of job {job_id} still running after the node came back: {left}"
    # Leave the cluster usable for whatever runs next.
    ns_slurm.run(["scontrol", "update", f"nodename={lost}", "state=resume"], check=False)
    deadline = time.monotonic() + 60
    while _node_state(ns_slurm, lost) != "idle" and time.monotonic() < deadline:
        time.sleep(1)
