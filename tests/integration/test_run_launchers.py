"""``hvdjob run`` end to end with real Horovod ranks: local Gloo, mpirun and horovodrun launches."""
from __future__ import annotations

import re
import shutil
import signal
import time
from pathlib import Path

import pytest

from tests.hvdjob_process import (
    processes_of_run,
    read_json,
    run_hvdjob,
    start_hvdjob,
    write_job,
)

pytestmark = pytest.mark.integration
SCRIPTS = Path(__file__).parent / "scripts"
RESULT_LINE = re.compile(r"^\[(\d)\] rank=(\d) size=2 local_rank=(\d) sum=3.0 params=([0-9a-f]+)$", re.M)


def _job(tmp_path: Path, launcher: str, script: str = "allreduce_torch.py", args: str = "[]") -> Path:
    return write_job(
        tmp_path,
        "job.yaml",
        f"""
        name: allreduce
        framework: torch
        script: {SCRIPTS / script}
        args: {args}
        launcher: {launcher}
        resources: {{np: 2}}
        """,
    )


def _assert_two_ranks_agree(finished, run_dir: Path) -> None:
    matches = RESULT_LINE.findall(finished.stdout)
    assert sorted(m[0] for m in matches) == ["0", "1"], finished.output
    for prefix_rank, rank, local_rank, _ in matches:
        assert prefix_rank == rank == local_rank  # the live prefix names the rank that printed
    assert len({m[3] for m in matches}) == 1, "parameters differ between ranks after a DistributedOptimizer step"
    for rank in (0, 1):
        log = (run_dir / f"rank.{rank}.log").read_text()
        assert f"rank={rank} size=2" in log
        assert "[" not in log.splitlines()[-1][:3]  # logs hold the rank's own lines, unprefixed
    assert read_json(run_dir / "spec.json")["framework"] == "torch"
    plan = read_json(run_dir / "plan.json")
    assert plan["np"] == 2


@pytest.mark.parametrize("launcher, expected_plan", [("gloo", "local"),
                                                     pytest.param("mpi", "mpi", marks=pytest.mark.mpirun)])
def test_plain_horovod_script_runs_on_two_ranks(tmp_path: Path, launcher: str, expected_plan: str) -> None:
    if launcher == "mpi" and not shutil.which("mpirun"):
        pytest.skip("mpirun is not installed")
    finished = run_hvdjob("run", str(_job(tmp_path, launcher)), cwd=tmp_path)
    assert finished.returncode == 0, finished.output
    run_dir = finished.run_dir()
    _assert_two_ranks_agree(finished, run_dir)
    assert read_json(run_dir / "plan.json")["launcher"] == expected_plan
    assert read_json(run_dir / "result.json")["exit_code"] == 0


@pytest.mark.mpirun
def test_large_allreduces_under_the_segmented_ring_rules_are_exact(tmp_path: Path) -> None:
    if not shutil.which("mpirun"):
        pytest.skip("mpirun is not installed")
    finished = run_hvdjob("run", str(_job(tmp_path, "auto", script="large_allreduce_torch.py")), cwd=tmp_path)
    assert finished.returncode == 0, finished.output
    run_dir = finished.run_dir()
    plan = read_json(run_dir / "plan.json")
    assert plan["launcher"] == "mpi", plan["notes"]  # hvdjob's default data plane on one machine
    rules = run_dir / "mpi-coll-rules.txt"
    assert rules.is_file() and " 5 0 262144" in rules.read_text()  # the file the ranks were pointed at
    for rank in (0, 1):
        for mib in (1, 24):
            assert f"rank={rank} allreduce {mib} MiB: 0 wrong values" in finished.stdout, finished.output


@pytest.mark.parametrize("env, owner", [({}, "hvdjob"), ({"HVDJOB_HOROVOD_WAIT": "horovod"}, "horovod")])
def test_a_plain_script_waits_for_horovod_by_sleeping_unless_told_otherwise(tmp_path: Path, env, owner) -> None:
    finished = run_hvdjob("run", str(_job(tmp_path, "gloo", script="wait_probe_torch.py")), cwd=tmp_path, env=env)
    assert finished.returncode == 0, finished.output
    for rank in (0, 1):
        assert f"rank={rank} sum=3.0 wait={owner}" in finished.stdout, finished.output


def test_gloo_through_horovodrun(tmp_path: Path) -> None:
    finished = run_hvdjob(
        "run", str(_job(tmp_path, "gloo")), cwd=tmp_path, env={"HVDJOB_GLOO_VIA_HOROVODRUN": "1"}
    )
    assert finished.returncode == 0, finished.output
    run_dir = finished.run_dir()
    _assert_two_ranks_agree(finished, run_dir)
    assert read_json(run_dir / "plan.json")["processes"][0]["argv"][0].endswith("horovodrun")


def test_ctrl_c_stops_every_rank(tmp_path: Path) -> None:
    job = _job(tmp_path, "gloo", script="sleepy_torch.py")
    proc = start_hvdjob("run", str(job), cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        seen = ""
        while time.monotonic() < deadline and seen.count("ready") < 2:
            line = proc.stdout.readline()
            seen += line
        assert seen.count("ready") == 2, seen
        run_id = next(p.name for p in (tmp_path / "runs" / "allreduce").iterdir() if p.name != "latest")
        assert len(processes_of_run(run_id)) == 4  # two supervisors, two ranks
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGINT, err
    assert "job stopped on SIGINT" in err
    assert processes_of_run(run_id) == []
