"""Jobs that train under Slurm: ``hvdjob submit`` -> sbatch -> ``hvdjob run`` -> srun -> Horovod ranks.

These run the whole chain on the local cluster, including preemption: the spec's stop signal
(``slurm.signal``, USR2 by default) to the batch script, ranks checkpoint and exit 75, the script
requeues the job, and the second run resumes.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from hvdrun_cli.slurm.client import parse_scontrol
from run_hvdjob import hvdjob, job_output, submit, write_spec
from slurm_cluster import SlurmCluster

pytestmark = [pytest.mark.slurm, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
ENDED = ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"]


def run_summaries(job_dir: Path) -> List[Dict]:
    """summary.json of every ``hvdjob run`` of the job, oldest first (run ids sort by time)."""
    paths = sorted(p for p in job_dir.glob("*/summary.json") if not p.parent.is_symlink())  # skip "latest"
    return [json.loads(p.read_text()) for p in paths]


def explain(cluster: SlurmCluster, cwd: Path, job_id: str) -> str:
    out = hvdjob(cluster, cwd, "logs", job_id)
    err = hvdjob(cluster, cwd, "logs", job_id, "--stderr")
    return f"--- stdout ---\n{out.stdout[-4000:]}\n--- stderr ---\n{err.stdout[-4000:]}"


def test_user_script_runs_on_every_task_under_srun(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    (tmp_path / "hello.py").write_text(
        "import os\n"
        "print('hello from task', os.environ['SLURM_PROCID'], 'of job', os.environ['SLURM_JOB_ID'], flush=True)\n"
    )
    spec = write_spec(tmp_path / "script.yaml", [
        "framework: torch", "name: script-job", "script: hello.py", "resources: {np: 2}",
        "slurm:", "  partition: debug", '  time: "00:05:00"', "  nodes: 1", "  ntasks_per_node: 2",
    ])
    job_id = submit(slurm_cluster, tmp_path, spec)
    state = slurm_cluster.wait_for_state(job_id, ENDED, timeout=240)
    assert state == "COMPLETED", explain(slurm_cluster, tmp_path, job_id)
    output = job_output(slurm_cluster, tmp_path, job_id)
    for task in ("0", "1"):
        assert f"hello from task {task} of job {job_id}" in output


def test_a_script_submitted_without_a_spec_runs_under_srun(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    """``hvdjob submit --np 2 SCRIPT ARGS``: the spec it writes into the job's directory is what runs."""
    (tmp_path / "hello.py").write_text(
        "import os, sys\n"
        "import horovod.torch  # only read by hvdjob to tell the framework; never initialised here\n"
        "print('task', os.environ['SLURM_PROCID'], 'says', *sys.argv[1:], flush=True)\n"
    )
    result = hvdjob(slurm_cluster, tmp_path, "submit", "--np", "2", "--set", "slurm.partition=debug",
                    "--set", "slurm.time=00:05:00", "--set", "slurm.ntasks_per_node=2", "hello.py", "hi", "--there")
    assert result.returncode == 0, result.stdout + result.stderr
    job_id = result.stdout.split()[2]
    state = slurm_cluster.wait_for_state(job_id, ENDED, timeout=240)
    assert state == "COMPLETED", explain(slurm_cluster, tmp_path, job_id)
    output = job_output(slurm_cluster, tmp_path, job_id)
    for task in ("0", "1"):
        assert f"task {task} says hi --there" in output
    (spec,) = (tmp_path / "runs" / "hello" / "slurm").glob("*/job.yaml")
    assert hvdjob(slurm_cluster, tmp_path, "validate", str(spec)).returncode == 0


STOPPABLE_SCRIPT = """\
import os, signal, sys, time
from pathlib import Path

rank, restart = os.environ["SLURM_PROCID"], os.environ.get("SLURM_RESTART_COUNT", "0")
name = os.environ["HVDJOB_STOP_SIGNAL"]  # slurm.signal, as hvdjob tells every rank
if restart == "0":
    stop = []
    signal.signal(getattr(signal, "SIG" + name), lambda *_: stop.append(True))
    Path(f"started.{rank}").write_text("")
    while not stop:
        time.sleep(0.1)
    print(f"task {rank}: stopping on {name}", flush=True)
    sys.exit(75)  # "checkpoint saved, resume me"
print(f"task {rank}: running again after restart {restart}", flush=True)
"""


def submit_stoppable(cluster: SlurmCluster, cwd: Path, requeue: int, stop_signal: Optional[str] = None) -> str:
    """Submit STOPPABLE_SCRIPT on 2 tasks and send the stop signal to the batch script once both run."""
    (cwd / "stoppable.py").write_text(STOPPABLE_SCRIPT)
    spec = write_spec(cwd / "stoppable.yaml", [
        "framework: torch", "name: stoppable", "script: stoppable.py", "resources: {np: 2}",
        "slurm:", "  partition: debug", '  time: "00:05:00"', "  nodes: 1", "  ntasks_per_node: 2",
        f"  requeue: {requeue}",
    ] + ([f"  signal: {stop_signal}"] if stop_signal else []))
    job_id = submit(cluster, cwd, spec)
    deadline = time.monotonic() + 120
    while not all((cwd / f"started.{task}").exists() for task in (0, 1)):
        assert time.monotonic() < deadline, explain(cluster, cwd, job_id)
        time.sleep(0.2)
    # What Slurm does before a time limit or preemption, sent by hand: the signal to the batch script only.
    cluster.run(["scancel", f"--signal={stop_signal or 'USR2'}", "--batch", job_id])
    return job_id


def test_script_that_stops_with_75_on_the_stop_signal_is_requeued_once(slurm_cluster: SlurmCluster,
                                                                      tmp_path: Path) -> None:
    job_id = submit_stoppable(slurm_cluster, tmp_path, requeue=1)  # the default stop signal: USR2
    state = slurm_cluster.wait_for_state(job_id, ENDED, timeout=240)
    details = explain(slurm_cluster, tmp_path, job_id)
    assert state == "COMPLETED", details
    assert parse_scontrol(slurm_cluster.run(["scontrol", "show", "job", job_id]).stdout)["Restarts"] == "1", details
    output = job_output(slurm_cluster, tmp_path, job_id)  # both runs append to the same file
    for task in ("0", "1"):
        assert f"task {task}: stopping on USR2" in output, details
        assert f"task {task}: running again after restart 1" in output, details


def test_without_requeue_a_stopped_job_ends_with_exit_code_75(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    job_id = submit_stoppable(slurm_cluster, tmp_path, requeue=0, stop_signal="USR1")  # slurm.signal chosen
    state = slurm_cluster.wait_for_state(job_id, ENDED, timeout=240)
    fields = parse_scontrol(slurm_cluster.run(["scontrol", "show", "job", job_id]).stdout)
    details = explain(slurm_cluster, tmp_path, job_id)
    assert state == "FAILED" and fields["ExitCode"] == "75:0", details
    assert fields["Restarts"] == "0"
    output = job_output(slurm_cluster, tmp_path, job_id)
    assert "task 0: stopping on USR1" in output and "task 1: stopping on USR1" in output, details
    assert "running again" not in output


def test_two_rank_horovod_job_completes_and_writes_its_summary(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    job_id = submit(slurm_cluster, tmp_path, REPO / "jobs" / "slurm-digits.yaml",
                    "--set", "train.epochs=2", "--set", "train.max_steps=30")
    state = slurm_cluster.wait_for_state(job_id, ENDED, timeout=400)
    assert state == "COMPLETED", explain(slurm_cluster, tmp_path, job_id)
    (summary,) = run_summaries(tmp_path / "runs" / "slurm-digits")
    assert summary["world_size"] == 2
    assert summary["steps"] == 30  # the --set flags reached the hvdjob run inside the job


def test_preempted_job_requeues_itself_and_resumes_from_its_checkpoint(slurm_cluster: SlurmCluster,
                                                                        tmp_path: Path) -> None:
    max_steps = 2000
    spec = write_spec(tmp_path / "preempt.yaml", [
        "framework: torch", "name: preempt",
        f"train: {{data: digits, epochs: 1000, max_steps: {max_steps}, log_interval: 50, validate: false}}",
        "resources: {np: 2}",
        "checkpoint: {interval_steps: 25}",
        "slurm:", "  partition: debug", '  time: "00:10:00"', "  nodes: 1", "  ntasks_per_node: 2",
        "  requeue: 1",
    ])
    job_id = submit(slurm_cluster, tmp_path, spec)
    checkpoints = tmp_path / "runs" / "preempt" / "checkpoints"
    deadline = time.monotonic() + 300
    while not list(checkpoints.glob("ckpt-*.json")):
        assert time.monotonic() < deadline, "no checkpoint written\n" + explain(slurm_cluster, tmp_path, job_id)
        assert slurm_cluster.job_state(job_id) in ("PENDING", "CONFIGURING", "RUNNING"), explain(
            slurm_cluster, tmp_path, job_id)
        time.sleep(0.2)

    # What Slurm does before a time limit or preemption, sent by hand: USR2 (slurm.signal's default)
    # to the batch script only; the managed ranks handle it and leave USR1 to NCCL/MPI.
    slurm_cluster.run(["scancel", "--signal=USR2", "--batch", job_id])

    state = slurm_cluster.wait_for_state(job_id, ENDED, timeout=600)
    details = explain(slurm_cluster, tmp_path, job_id)
    assert state == "COMPLETED", details
    assert parse_scontrol(slurm_cluster.run(["scontrol", "show", "job", job_id]).stdout)["Restarts"] == "1", details
    assert "requeueing job" in details
    assert "stop requested (SIGUSR2)" in job_output(slurm_cluster, tmp_path, job_id), details
    first, second = run_summaries(tmp_path / "runs" / "preempt")
    assert second["steps"] == max_steps
    assert 0 < second["resumed_from_step"] <= first["steps"] < max_steps
    steps_run = first["steps"] + (second["steps"] - second["resumed_from_step"])
    assert steps_run < 2 * max_steps  # the second run continued instead of starting over
