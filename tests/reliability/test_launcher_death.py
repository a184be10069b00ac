"""hvdjob itself killed with SIGKILL (as by the OOM killer): no process of its job survives 10 s.

A job's ranks must notice that their launcher is gone without any help from it: ``kill -9`` leaves
hvdjob no time to clean up. Each test kills only the hvdjob process and then watches this machine's
process table for anything that still carries the run's ``HVDJOB_RUN_ID``.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
import pytest

from tests.hvdjob_process import kill_quietly, processes_of_run
from tests.reliability.support import JobRunner, leftovers, managed_job, newest_checkpoint, wait_until_gone

pytestmark = pytest.mark.integration
SLEEPY = Path(__file__).resolve().parents[1] / "integration" / "scripts" / "sleepy_torch.py"
ORPHAN_LIMIT_S = 10.0


def sleepy_job(runner: JobRunner, launcher: str) -> Path:
    return runner.write(f"sleepy-{launcher}.yaml", f"""
        name: orphans
        framework: torch
        launcher: {launcher}
        script: {SLEEPY}
        resources: {{np: 2}}
        """)


@pytest.mark.parametrize("launcher", ["gloo", "mpi"])
def test_kill_9_of_hvdjob_leaves_no_process_of_the_job(jobs: JobRunner, launcher: str, measure) -> None:
    job = jobs.start("run", str(sleepy_job(jobs, launcher)))
    job.find_run_dir()
    job.wait_for(r"^\[1\] rank 1 ready$")
    job.wait_for(r"^\[0\] rank 0 ready$")
    before = processes_of_run(job.run_id)
    assert len(before) >= 4, before  # 2 supervisors and 2 ranks (and mpirun)

    os.kill(job.proc.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    job.proc.wait(10)
    left = wait_until_gone(job.run_id, ORPHAN_LIMIT_S)
    took = time.monotonic() - killed_at

    assert left == [], f"{len(left)} process(es) of the job alive {ORPHAN_LIMIT_S:.0f} s after kill -9 of hvdjob"
    measure(f"kill -9 of hvdjob ({launcher}, 2 ranks): time until no process of the job is left",
            f"{took:.2f} s ({len(before)} processes before)")


def test_kill_9_of_hvdjob_during_training_leaves_an_intact_checkpoint(jobs: JobRunner, measure) -> None:
    spec = managed_job(jobs, epochs=30, interval=10)
    job = jobs.start("run", str(spec))
    job.find_run_dir()
    job.wait_for(r"^\[0\] hvdjob: checkpoint saved: .*ckpt-0+20\.pt$")

    os.kill(job.proc.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    left = wait_until_gone(job.run_id, ORPHAN_LIMIT_S)
    took = time.monotonic() - killed_at

    assert left == [], f"{len(left)} process(es) of the job alive {ORPHAN_LIMIT_S:.0f} s after kill -9 of hvdjob"
    checkpoints = jobs.workdir / "runs" / "reliability" / "checkpoints"
    step, state = newest_checkpoint(checkpoints)  # verified against its SHA-256 and loaded
    assert step >= 20 and state["position"]["global_step"] == step
    assert leftovers(checkpoints) == [], "partial checkpoint files left behind"
    measure("kill -9 of hvdjob mid-training: time until no process is left", f"{took:.2f} s")
    measure("kill -9 of hvdjob mid-training: newest checkpoint", f"step {step}, SHA-256 verified, loads")


# -- srun, on the test Slurm ----------------------------------------------------------------------

from tests.slurm_cluster import slurm_cluster  # noqa: E402,F401  (the session fixture)


def _hvdjob_in(cwd: Path, timeout: float = 60) -> int:
    """The pid of ``python -m hvdrun_cli run`` working in ``cwd``."""
    deadline = time.monotonic() + timeout
    needle = b"\0-m\0hvdrun_cli\0run\0"
    while time.monotonic() < deadline:
        for entry in os.listdir("/proc"):
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    cmdline = b"\0" + fh.read()
                if needle in cmdline and os.readlink(f"/proc/{entry}/cwd") == str(cwd):
                    return int(entry)
            except (OSError, ValueError):
                continue
        time.sleep(0.2)
    raise AssertionError(f"no hvdjob process runs in {cwd}")


@pytest.mark.slurm
def test_kill_9_of_hvdjob_under_srun_leaves_no_task(slurm_cluster, tmp_path: Path, measure) -> None:  # noqa: F811
    """hvdjob inside an allocation (salloc keeps it after hvdjob dies): srun's tasks must end anyway."""
    spec = tmp_path / "srun.yaml"
    spec.write_text(f"name: orphans\nframework: torch\nlauncher: srun\nscript: {SLEEPY}\nresources: {{np: 2}}\n")
    out = tmp_path / "salloc.out"
    # The shell sleeps on after hvdjob: the allocation (and so Slurm's own clean-up) outlives it.
    script = f"{sys.executable} -m hvdrun_cli run {spec}; sleep 60"
    with open(out, "wb") as fo:
        salloc = subprocess.Popen(
            ["salloc", "--ntasks=2", "--nodes=1", "--time=5", "/bin/sh", "-c", script],
            cwd=tmp_path, env=slurm_cluster.env, stdout=fo, stderr=subprocess.STDOUT, start_new_session=True,
        )
    run_id = ""
    try:
        deadline = time.monotonic() + 180
        while (out.read_text(errors="replace").count(" ready") < 2 and time.monotonic() < deadline
               and salloc.poll() is None):
            time.sleep(0.2)
        text = out.read_text(errors="replace")
        assert text.count(" ready") == 2, text[-3000:]
        run_id = next(p.name for p in (tmp_path / "runs" / "orphans").iterdir() if p.name != "latest")
        before = processes_of_run(run_id)
        hvdjob = _hvdjob_in(tmp_path)

        os.kill(hvdjob, signal.SIGKILL)
        killed_at = time.monotonic()
        left = wait_until_gone(run_id, ORPHAN_LIMIT_S)
        took = time.monotonic() - killed_at

        assert left == [], f"{len(left)} process(es) of the job alive {ORPHAN_LIMIT_S:.0f} s after kill -9 of hvdjob"
        assert salloc.poll() is None, "the allocation ended: Slurm, not hvdjob, cleaned up"
        measure("kill -9 of hvdjob (srun, 2 tasks, allocation kept): time until no process is left",
                f"{took:.2f} s ({len(before)} processes before)")
    finally:
        granted = re.search(r"Granted job allocation (\d+)", out.read_text(errors="replace"))
        if granted:
            slurm_cluster.run(["scancel", granted.group(1)], check=False)
        if salloc.poll() is None:
            os.killpg(salloc.pid, signal.SIGTERM)
            try:
                salloc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(salloc.pid, signal.SIGKILL)
                salloc.wait(10)
        if run_id:
            kill_quietly(processes_of_run(run_id))
