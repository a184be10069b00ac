"""Elastic training on one machine: lose a worker, keep training, grow back when a host appears.

Horovod's elastic driver tells hosts apart by name, so the test uses names that all resolve to this
machine (``localhost``, ``127.0.0.1`` and the machine's own hostname) and changes what the
discovery script prints while the job runs. A worker whose process dies gets its host blacklisted
by Horovod, which is why the host that comes back is a third name; the host that stays must be
the one whose worker survived (Horovod needs one host of the old set to hand the state over).
"""
from __future__ import annotations

import json
import math
import re
import signal
import socket
from pathlib import Path
from typing import List, Sequence

import pytest

from tests.hvdjob_process import processes_of_run
from tests.reliability.support import (JobRunner, kill_pid, managed_job, newest_checkpoint, process_env,
                                       stop_job)

pytestmark = pytest.mark.integration
EPOCHS = 10
TRAIN_SAMPLES = 1437  # the digits training split
STEPS_PER_EPOCH = {2: 23, 1: 45}  # 32 per batch and rank


def expected_steps(world_sizes: Sequence[Sequence[int]], epochs: int, batch_size: int) -> int:
    """Optimizer steps a run takes when it trains at each logged (step, size) from that step on.

    Each entry is where training continued after a reset (the last commit). Within an epoch the
    samples not yet trained on are split evenly over the current ranks, padded to equal shares,
    like Horovod's ElasticSampler; an epoch ends when all of them are done.
    """
    changes: List[Sequence[int]] = list(world_sizes)
    step, epoch, done, index = 0, 0, 0, 0
    while epoch < epochs:
        size = changes[index][1]
        left = math.ceil(math.ceil((TRAIN_SAMPLES - done) / size) / batch_size)
        next_change = changes[index + 1][0] if index + 1 < len(changes) else math.inf
        if step + left <= next_change:
            step, epoch, done = step + left, epoch + 1, 0
        else:
            done += (next_change - step) * batch_size * size
            step, index = int(next_change), index + 1
    return step


def _third_local_name() -> str:
    name = socket.gethostname()
    try:
        address = socket.gethostbyname(name)
    except OSError:
        address = ""
    if not address.startswith("127.") or name in ("localhost", "127.0.0.1"):
        pytest.skip(f"this machine's hostname {name!r} does not resolve to loopback; a third local name is needed")
    return name


def _discovery(jobs: JobRunner, hosts: Path) -> Path:
    script = jobs.write("discover.sh", f"#!/bin/sh\ncat '{hosts}'\n")
    script.chmod(0o755)
    return script


def test_elastic_job_survives_a_lost_worker_and_grows_back(jobs: JobRunner, measure) -> None:
    third = _third_local_name()
    hosts = jobs.workdir / "hosts.txt"
    hosts.write_text("localhost:1\n127.0.0.1:1\n")
    spec = managed_job(
        jobs, job_name="elastic", epochs=EPOCHS, delay=0.03,
        elastic={"min_np": 1, "max_np": 2, "discovery_script": str(_discovery(jobs, hosts))},
        horovod={"network_interfaces": ["lo"]},
    )
    job = jobs.start("run", str(spec))
    job.find_run_dir()
    job.wait_for(r"^\[0\] epoch \d+/\d+ step 30/", 180)
    victim = job.worker_pid(1)
    lost_host = process_env(victim)["HOROVOD_HOSTNAME"]  # Horovod orders hosts as it likes
    killed_at = kill_pid(victim)
    shrank, _ = job.wait_for(r"^\[0\] hvdjob: workers shrank from 2 to 1; continuing from the last commit at "
                             r"step (\d+)", 60)
    _, trained_at = job.wait_for(r"^\[0\] epoch \d+/\d+ step \d+/", 60, after=shrank.end())
    survivor = ({"localhost", "127.0.0.1"} - {lost_host}).pop()
    hosts.write_text(f"{survivor}:1\n{third}:1\n")
    grew, _ = job.wait_for(r"^\[0\] hvdjob: workers grew from 1 to 2", 120, after=shrank.end())
    code = job.wait(180)

    assert code == 0, job.output[-4000:]
    assert "rank 1 was killed by SIGKILL; Horovod's elastic driver goes on without it" in job.stdout
    summary = json.loads((job.run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs"] == EPOCHS
    sizes = summary["elastic"]["world_sizes"]
    assert [size for _, size in sizes] == [2, 1, 2]
    assert summary["steps"] == expected_steps(sizes, EPOCHS, 32)
    # Part of the run had one rank (twice the steps per epoch), the rest two.
    assert EPOCHS * STEPS_PER_EPOCH[2] < summary["steps"] < EPOCHS * STEPS_PER_EPOCH[1]
    assert processes_of_run(job.run_id) == []
    measure("elastic, kill -9 of one worker: kill to training again on 1 rank",
            f"{trained_at - killed_at:.2f} s (rolled back to step {shrank.group(1)})")
    measure("elastic: steps with world sizes 2 -> 1 -> 2", f"{summary['steps']} "
            f"(all on 2 ranks: {EPOCHS * STEPS_PER_EPOCH[2]}, all on 1: {EPOCHS * STEPS_PER_EPOCH[1]})")


def test_elastic_keras_job_with_a_watched_hostfile_keeps_training_after_losing_a_worker(
    jobs: JobRunner, measure
) -> None:
    """Also the watched-hostfile mode: hvdjob's generated discovery script reads an MPI-style hostfile."""
    hosts = jobs.workdir / "hosts.txt"
    hosts.write_text("# workers\nlocalhost slots=1\n127.0.0.1 slots=1\n")
    spec = jobs.write("keras.yaml", f"""
        framework: tensorflow
        name: elastic-keras
        resources: {{np: 2}}
        elastic: {{min_np: 1, max_np: 2, hostfile: {hosts}}}
        horovod: {{network_interfaces: [lo]}}
        train: {{model: mlp, model_args: {{hidden: [32]}}, data: digits, epochs: 20, batch_size: 16, lr: 0.05,
                log_interval: 10, seed: 1, validate: false}}
        checkpoint: {{interval_steps: 100}}
        """)
    job = jobs.start("run", str(spec))
    job.find_run_dir()
    job.wait_for(r"^\[0\] epoch \d+/\d+ step 200/", 240)
    killed_at = kill_pid(job.worker_pid(1))
    shrank, _ = job.wait_for(r"^\[0\] hvdjob: workers shrank from 2 to 1; continuing from the last commit at "
                             r"step (\d+)", 90)
    _, trained_at = job.wait_for(r"^\[0\] epoch \d+/\d+ step \d+/", 60, after=shrank.end())
    code = job.wait(240)

    assert code == 0, job.output[-4000:]
    summary = json.loads((job.run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs"] == 20
    sizes = summary["elastic"]["world_sizes"]
    assert [size for _, size in sizes] == [2, 1]
    assert summary["steps"] == expected_steps(sizes, 20, 16)
    assert (job.run_dir / "discover_hosts.sh").is_file()
    assert processes_of_run(job.run_id) == []
    measure("elastic Keras, kill -9 of one worker: kill to training again on 1 rank",
            f"{trained_at - killed_at:.2f} s (rolled back to step {shrank.group(1)})")


def test_ctrl_c_stops_an_elastic_job_with_a_checkpoint(jobs: JobRunner, measure) -> None:
    """Horovod ends a worker it drops with SIGTERM, so the graceful stop reaches elastic ranks as SIGUSR1."""
    hosts = jobs.workdir / "hosts.txt"
    hosts.write_text("localhost:1\n127.0.0.1:1\n")
    spec = managed_job(
        jobs, job_name="elastic-stop", epochs=EPOCHS, delay=0.03,
        elastic={"min_np": 1, "max_np": 2, "discovery_script": str(_discovery(jobs, hosts))},
        horovod={"network_interfaces": ["lo"]},
    )
    job = jobs.start("run", str(spec))
    job.find_run_dir()
    job.wait_for(r"^\[0\] hvdjob: checkpoint saved: .*ckpt-0+10\.pt$", 180)
    stop_job(job, signal.SIGINT)
    code = job.wait(90)

    assert code == 75, job.output[-4000:]
    assert "job stopped on SIGINT; ranks saved a checkpoint" in job.stderr
    saved = re.search(r"^\[0\] hvdjob: stop requested \(SIGUSR1\); saving at step (\d+)$", job.stdout, re.M)
    assert saved, job.stdout[-3000:]
    step, _ = newest_checkpoint(jobs.workdir / "runs" / "elastic-stop" / "checkpoints")
    assert step == int(saved.group(1))
    assert processes_of_run(job.run_id) == []
    measure("elastic, SIGINT to hvdjob: newest checkpoint", f"step {step}, SHA-256 verified, loads")
