"""Plan builders: exact argv and environment for each launcher, from a fake set of tools."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from hvdrun_cli.errors import LaunchError, LayoutError
from hvdrun_cli.launch.planner import choose_launcher, make_plan, resolve_hosts
from hvdrun_cli.launch.tools import Tools
from hvdrun_cli.spec.model import HorovodSpec, JobSpec, ResourcesSpec

PY = "/venv/bin/python"
RANK_CMD = [PY, "-m", "hvdrun_cli.launch.rank_io", "--", PY, "-m", "hvdrun_cli.adapters.worker"]
TOOLS = Tools(
    python=PY,
    horovodrun="/venv/bin/horovodrun",
    mpirun="/usr/bin/mpirun",
    mpi_implementation="openmpi",
    srun="/usr/bin/srun",
    sbatch="/usr/bin/sbatch",
    is_root=True,
    hostname="box",
    cores=8,
)
ENV = {"PATH": "/venv/bin:/usr/bin"}


def spec(**resources) -> JobSpec:
    return JobSpec(
        framework="torch", name="demo", script="/jobs/train.py", resources=ResourcesSpec(**resources),
        run_root="/runs",
    )


def plan_for(job: JobSpec, environ=ENV, tools=TOOLS, port=None, addr=None):
    return make_plan(
        job, environ=environ, tools=tools, run_dir="/runs/demo/r1", run_id="r1",
        rendezvous_port=port, rendezvous_addr=addr,
    )


def test_local_gloo_plan_gives_each_rank_horovodrun_gloo_environment() -> None:
    plan = plan_for(spec(np=2), port=4000)
    assert plan.launcher == "local"
    assert [p.rank for p in plan.processes] == [0, 1]
    assert all(list(p.argv) == RANK_CMD for p in plan.processes)
    assert plan.processes[1].env_dict() == {
        "HOROVOD_HOSTNAME": "localhost",
        "HOROVOD_RANK": "1",
        "HOROVOD_SIZE": "2",
        "HOROVOD_LOCAL_RANK": "1",
        "HOROVOD_LOCAL_SIZE": "2",
        "HOROVOD_CROSS_RANK": "0",
        "HOROVOD_CROSS_SIZE": "1",
    }
    env = plan.env_dict()
    assert env["HOROVOD_GLOO_RENDEZVOUS_ADDR"] == "127.0.0.1"
    assert env["HOROVOD_GLOO_RENDEZVOUS_PORT"] == "4000"
    assert env["HOROVOD_CONTROLLER"] == env["HOROVOD_CPU_OPERATIONS"] == "gloo"
    assert env["HOROVOD_GLOO_IFACE"] == "lo"
    assert env["OMP_NUM_THREADS"] == "4"  # 8 cores shared by 2 local ranks
    assert env["HVDJOB_SPEC"] == "/runs/demo/r1/spec.json"
    assert "PATH" not in env  # a plan holds only what it adds


def test_mpi_plan_argv_is_exact() -> None:
    plan = plan_for(replace(spec(hosts=("a:2", "b:2"), np=3), launcher="mpi"))
    argv = list(plan.processes[0].argv)
    head = argv[: argv.index("-x")]
    assert head == [
        "/usr/bin/mpirun", "--allow-run-as-root", "-np", "3", "-H", "a:2,b:1",
        "--bind-to", "none", "--map-by", "slot",
        "-mca", "pml", "ob1", "-mca", "btl", "self,vader,tcp",
        "-mca", "btl_vader_single_copy_mechanism", "none",
        "-mca", "orte_abort_on_non_zero_status", "0",
    ]
    exported = [argv[i + 1] for i, a in enumerate(argv) if a == "-x"]
    assert "PATH" in exported and "HVDJOB_SPEC" in exported and "HOROVOD_STALL_CHECK_TIME_SECONDS" in exported
    assert "LD_LIBRARY_PATH" not in exported  # not set in the caller's environment: not forwarded
    assert argv[-len(RANK_CMD):] == RANK_CMD
    assert [(s.rank, s.hostname, s.local_rank, s.cross_rank) for s in plan.layout] == [
        (0, "a", 0, 0), (1, "a", 1, 0), (2, "b", 0, 1)
    ]


def test_mpi_plan_without_root_and_with_network_interfaces() -> None:
    job = replace(spec(hosts=("a:1", "b:1")), launcher="mpi", horovod=HorovodSpec(network_interfaces=("eth1",)))
    argv = list(plan_for(job, tools=replace(TOOLS, is_root=False)).processes[0].argv)
    assert "--allow-run-as-root" not in argv
    assert argv[argv.index("btl_tcp_if_include") + 1] == "eth1"
    assert plan_for(job).env_dict()["HOROVOD_GLOO_IFACE"] == "eth1"


def test_horovodrun_plan_for_gloo_across_hosts() -> None:
    job = replace(spec(hosts=("a:2", "b:2")), launcher="gloo")
    plan = plan_for(job)
    assert plan.launcher == "gloo"
    assert list(plan.processes[0].argv) == ["/venv/bin/horovodrun", "--gloo", "-np", "4", "-H", "a:2,b:2"] + RANK_CMD
    assert "OMP_NUM_THREADS" not in plan.env_dict()  # remote core counts are unknown: ranks decide


def test_srun_plan_inside_allocation_writes_layout_file() -> None:
    environ = dict(ENV, SLURM_JOB_ID="7", SLURM_JOB_NODELIST="node[01-02]", SLURM_TASKS_PER_NODE="2(x2)")
    plan = plan_for(spec(), environ=environ, port=5000, addr="10.0.0.1")
    assert plan.launcher == "srun"
    argv = list(plan.processes[0].argv)
    assert argv[:8] == [
        "/usr/bin/srun", "--ntasks=4", "--nodes=2", "--distribution=block", "--kill-on-bad-exit=1",
        "--cpu-bind=none", "--mpi=none", "--export=ALL",
    ]
    layout = json.loads(plan.files[0].content)
    assert [(s["rank"], s["hostname"], s["local_rank"]) for s in layout] == [
        (0, "node01", 0), (1, "node01", 1), (2, "node02", 0), (3, "node02", 1)
    ]
    env = plan.env_dict()
    assert env["HVDJOB_GLOO_LAYOUT"] == plan.files[0].path
    assert env["HOROVOD_GLOO_RENDEZVOUS_ADDR"] == "10.0.0.1"


@pytest.mark.parametrize(
    "launcher, hosts, environ, tools, expected",
    [
        ("auto", (), {}, TOOLS, "local"),
        ("auto", ("a:2", "b:2"), {}, TOOLS, "mpi"),
        ("auto", ("a:2", "b:2"), {}, replace(TOOLS, mpirun=None), "gloo"),
        ("auto", (), {"SLURM_JOB_ID": "1", "SLURM_JOB_NODELIST": "n1", "SLURM_TASKS_PER_NODE": "2"}, TOOLS, "srun"),
        ("gloo", ("localhost:2",), {}, TOOLS, "local"),
        ("gloo", ("box:2",), {"HVDJOB_GLOO_VIA_HOROVODRUN": "1"}, TOOLS, "gloo"),
        ("mpi", (), {}, TOOLS, "mpi"),
    ],
)
def test_launcher_choice(launcher, hosts, environ, tools, expected) -> None:
    job = replace(spec(hosts=hosts), launcher=launcher)
    builder, reason = choose_launcher(job, resolve_hosts(job, environ), tools, environ)
    assert builder == expected, reason


def test_srun_outside_allocation_is_refused() -> None:
    with pytest.raises(LaunchError, match="needs a Slurm allocation"):
        plan_for(replace(spec(), launcher="srun"))


def test_missing_mpirun_is_a_clear_error() -> None:
    with pytest.raises(LaunchError, match="mpirun not found"):
        plan_for(replace(spec(), launcher="mpi"), tools=replace(TOOLS, mpirun=None))


def test_more_ranks_than_slots() -> None:
    with pytest.raises(LayoutError, match=r"Requested more processes \(5\) than there are available slots \(4\)"):
        plan_for(spec(hosts=("a:2", "b:2"), np=5))


def test_tunables_become_horovod_variables() -> None:
    hvd = HorovodSpec(
        fusion_threshold_mb=32, cycle_time_ms=2.5, timeline="/tmp/t.json", autotune=True, stall_check=False,
        log_level="debug", threads_per_rank=3,
    )
    env = plan_for(replace(spec(np=2), horovod=hvd, env={"MY_VAR": "x y"}), port=1).env_dict()
    assert env["HOROVOD_FUSION_THRESHOLD"] == str(32 * 1024 * 1024)
    assert env["HOROVOD_CYCLE_TIME"] == "2.5"
    assert env["HOROVOD_TIMELINE"] == "/tmp/t.json"
    assert env["HOROVOD_AUTOTUNE"] == "1"
    assert env["HOROVOD_STALL_CHECK_DISABLE"] == "1"
    assert env["HOROVOD_LOG_LEVEL"] == "DEBUG"
    assert env["OMP_NUM_THREADS"] == "3"
    assert env["MY_VAR"] == "x y"


def test_tensorflow_jobs_get_legacy_keras() -> None:
    env = plan_for(replace(spec(np=1), framework="tensorflow"), port=1).env_dict()
    assert env["TF_USE_LEGACY_KERAS"] == "1"


def test_dry_run_text_shows_commands_and_layout() -> None:
    text = plan_for(spec(np=2), port=4000).render_text()
    assert "launcher:  local" in text
    assert "rank 1   host localhost" in text
    assert "-m hvdrun_cli.launch.rank_io -- /venv/bin/python -m hvdrun_cli.adapters.worker" in text
    assert "127.0.0.1:4000" in text
