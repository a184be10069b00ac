"""The data-plane choice and what the plan says about it and about binding (dry-run notes, argv)."""
from __future__ import annotations

from dataclasses import replace

import pytest

from hvdrun_cli.errors import LaunchError
from hvdrun_cli.launch import data_plane
from hvdrun_cli.launch.placement import HostCpus
from hvdrun_cli.launch.planner import decide, make_plan
from hvdrun_cli.launch.rendezvous import release_port, reserve_port
from hvdrun_cli.launch.tools import Tools
from hvdrun_cli.spec.model import HorovodSpec, JobSpec, ResourcesSpec

PY = "/venv/bin/python"
MPI_TOOLS = Tools(python=PY, horovodrun="/venv/bin/horovodrun", mpirun="/usr/bin/mpirun",
                  mpi_implementation="openmpi", is_root=True, hostname="box", cores=2,
                  horovod_mpi=True, cma=True, cpus=HostCpus((0, 1)))
ENV = {"PATH": "/venv/bin:/usr/bin"}


def job(np=2, data="auto", binding="auto", launcher="auto", **resources) -> JobSpec:
    return JobSpec(framework="torch", name="demo", script="/jobs/train.py", launcher=launcher,
                   resources=ResourcesSpec(np=np, binding=binding, **resources),
                   horovod=HorovodSpec(data_plane=data), run_root="/runs")


def plan(spec: JobSpec, tools: Tools = MPI_TOOLS):
    return make_plan(spec, environ=ENV, tools=tools, run_dir="/runs/demo/r1", run_id="r1", rendezvous_port=4000)


def test_local_multi_rank_job_uses_mpi_over_shared_memory_when_horovod_and_mpirun_have_it() -> None:
    p = plan(job())
    assert p.launcher == "mpi"
    env = p.env_dict()
    assert env["HOROVOD_CONTROLLER"] == "mpi" and env["HOROVOD_CPU_OPERATIONS"] == "mpi"
    argv = list(p.processes[0].argv)
    assert argv[argv.index("btl") + 1] == "self,vader"  # no TCP transport on one machine
    assert argv[argv.index("btl_vader_single_copy_mechanism") + 1] == "cma"
    assert any("controller mpi" in n and "CMA single-copy" in n for n in p.notes)
    assert p.rendezvous_port is None


def test_without_cma_the_copy_in_copy_out_path_is_used() -> None:
    argv = list(plan(job(), replace(MPI_TOOLS, cma=False)).processes[0].argv)
    assert argv[argv.index("btl_vader_single_copy_mechanism") + 1] == "none"


@pytest.mark.parametrize("tools, why", [
    (replace(MPI_TOOLS, horovod_mpi=False), "Horovod was built without MPI"),
    (replace(MPI_TOOLS, mpirun=None, mpi_implementation=None), "no Open MPI mpirun"),
    (replace(MPI_TOOLS, mpi_implementation="mpich"), "no Open MPI mpirun"),
])
def test_without_mpi_the_builtin_gloo_launcher_stays_and_says_why(tools: Tools, why: str) -> None:
    p = plan(job(), tools)
    assert p.launcher == "local"
    assert p.env_dict()["HOROVOD_CONTROLLER"] == "gloo"
    assert any(n.startswith("data plane: controller gloo") and why in n for n in p.notes), p.notes


def test_one_rank_has_nothing_to_reduce_and_stays_on_the_builtin_launcher() -> None:
    assert plan(job(np=1)).launcher == "local"


def test_the_spec_key_forces_either_data_plane() -> None:
    assert plan(job(data="gloo")).launcher == "local"
    assert plan(job(data="mpi", np=1)).launcher == "mpi"
    with pytest.raises(LaunchError, match="data_plane: mpi needs"):
        plan(job(data="mpi", launcher="gloo"))


def test_launcher_gloo_keeps_gloo_with_its_reason() -> None:
    p = plan(job(launcher="gloo"))
    assert p.launcher == "local"
    assert any("launcher gloo requested" in n for n in p.notes)


def test_across_hosts_mpirun_keeps_the_tcp_transport_and_no_single_copy() -> None:
    p = plan(job(np=4, hosts=("a:2", "b:2")))
    argv = list(p.processes[0].argv)
    assert argv[argv.index("btl") + 1] == "self,vader,tcp"
    assert argv[argv.index("btl_vader_single_copy_mechanism") + 1] == "none"
    assert "HOROVOD_CONTROLLER" not in p.env_dict()


def test_dry_run_shows_each_local_ranks_cpus_and_why() -> None:
    p = plan(job())
    assert dict(p.bindings) == {0: "0 (block 0: 1 of 2 usable CPU(s))", 1: "1 (block 1: 1 of 2 usable CPU(s))"}
    text = p.render_text()
    assert "cpus 1 (block 1" in text and "binding: auto" in text
    assert p.env_dict()["HVDJOB_BINDING"] == "auto" and p.env_dict()["OMP_NUM_THREADS"] == "1"
    assert p.to_dict()["layout"][1]["cpus"].startswith("1 ")


def test_oversubscribed_local_job_warns_and_binds_nothing() -> None:
    p = plan(job(np=3))
    assert "HVDJOB_BINDING" not in p.env_dict()
    assert any("warning" in n and "oversubscribed" in n for n in p.notes)


def test_binding_none_leaves_ranks_unbound() -> None:
    p = plan(job(binding="none"))
    assert "HVDJOB_BINDING" not in p.env_dict()
    assert any(n == "binding: none (resources.binding: none)" for n in p.notes)


def test_remote_hosts_are_left_unbound_by_auto_and_bound_by_their_own_supervisors_on_request() -> None:
    assert "HVDJOB_BINDING" not in plan(job(np=4, hosts=("a:2", "b:2"))).env_dict()
    p = plan(job(np=4, hosts=("a:2", "b:2"), binding="core"))
    assert p.env_dict()["HVDJOB_BINDING"] == "core"
    assert p.bindings == ()


def test_the_plan_writes_spec_json_among_its_files() -> None:
    p = plan(job())
    assert "/runs/demo/r1/spec.json" in [f.path for f in p.files]
    assert '"framework": "torch"' in p.files[-1].content


def test_decide_resolves_layout_and_launcher_once_for_make_plan() -> None:
    decision = decide(job(), ENV, MPI_TOOLS)
    assert decision.kind == "mpi" and len(decision.layout) == 2 and decision.data_plane is not None
    assert make_plan(job(), environ={}, tools=MPI_TOOLS, run_dir="/r", run_id="1", decision=decision).launcher == "mpi"


def test_a_reserved_rendezvous_port_is_held_until_released() -> None:
    import socket

    port = reserve_port("127.0.0.1")
    try:
        with socket.socket() as other:
            with pytest.raises(OSError):
                other.bind(("127.0.0.1", port))
    finally:
        release_port(port)


def test_data_plane_choice_table() -> None:
    kw = dict(horovod_mpi=True, openmpi=True, cma=True)
    assert data_plane.choose("auto", local=True, np=2, **kw).controller == "mpi"
    assert data_plane.choose("auto", local=False, np=2, **kw) is None
    assert data_plane.choose("gloo", local=True, np=2, **kw) is None
    assert data_plane.choose("auto", local=True, np=2, horovod_mpi=None, openmpi=True, cma=True) is None



def test_the_data_plane_does_not_depend_on_how_busy_the_machine_is() -> None:
    """What --dry-run shows is what runs: the choice is a function of the spec and the installation."""
    assert plan(job(), replace(MPI_TOOLS, busy_share=1.0)).launcher == "mpi"
    assert plan(job(), replace(MPI_TOOLS, busy_share=0.1)).launcher == "mpi"


SLURM_2X2 = {**ENV, "SLURM_JOB_ID": "7", "SLURM_JOB_NODELIST": "n[1-2]", "SLURM_TASKS_PER_NODE": "2(x2)",
             "SLURM_NTASKS": "4"}
SRUN_TOOLS = replace(MPI_TOOLS, srun="/usr/bin/srun")


def srun_plan(environ, binding="auto", **horovod):
    spec = replace(job(np=4, binding=binding), horovod=HorovodSpec(network_interfaces=("lo",), **horovod))
    return make_plan(spec, environ=environ, tools=SRUN_TOOLS, run_dir="/runs/demo/r1", run_id="r1",
                     rendezvous_port=4000, rendezvous_addr="10.0.0.1")


def test_srun_ranks_are_bound_by_auto_and_the_dry_run_shows_each_ones_block_of_its_node() -> None:
    p = srun_plan({**SLURM_2X2, "SLURM_JOB_CPUS_PER_NODE": "4,2"})
    assert p.env_dict()["HVDJOB_BINDING"] == "auto"
    assert "--cpu-bind=none" in p.processes[0].argv  # the supervisor binds; Slurm must not bind again
    shown = dict(p.bindings)
    assert shown[0] == "allocated CPUs #0-1 of 4 on n1 (2 per rank)"
    assert shown[1] == "allocated CPUs #2-3 of 4 on n1 (2 per rank)"
    assert shown[2] == "allocated CPU #0 of 2 on n2 (1 per rank)"
    assert shown[3] == "allocated CPU #1 of 2 on n2 (1 per rank)"
    assert "cpus allocated CPU #1 of 2 on n2" in p.render_text()


def test_srun_dry_run_says_when_a_node_has_fewer_cpus_than_ranks_or_slurm_gives_no_counts() -> None:
    shown = dict(srun_plan({**SLURM_2X2, "SLURM_JOB_CPUS_PER_NODE": "1(x2)"}).bindings)
    assert shown[0].startswith("not bound: oversubscribed (1 allocated CPUs on n1)")
    assert "SLURM_JOB_CPUS_PER_NODE not set" in dict(srun_plan(SLURM_2X2).bindings)[3]


def test_srun_binding_none_passes_no_policy_to_the_ranks() -> None:
    p = srun_plan({**SLURM_2X2, "SLURM_JOB_CPUS_PER_NODE": "2(x2)"}, binding="none")
    assert "HVDJOB_BINDING" not in p.env_dict() and p.bindings == ()


def test_open_mpi_waits_yield_the_cpu_to_the_ranks_compute_threads() -> None:
    p = plan(job())
    assert p.env_dict()["OMPI_MCA_mpi_yield_when_idle"] == "1"
    argv = list(p.processes[0].argv)
    assert argv[argv.index("OMPI_MCA_mpi_yield_when_idle") - 1] == "-x"  # reaches every rank
    assert any(n.startswith("data plane:") and "MPI waits yield the CPU" in n for n in p.notes), p.notes


def test_a_users_own_yield_setting_wins_in_the_spec_or_the_environment() -> None:
    spec = replace(job(), env={"OMPI_MCA_mpi_yield_when_idle": "0"})
    p = plan(spec)
    assert p.env_dict()["OMPI_MCA_mpi_yield_when_idle"] == "0"
    assert any("MPI waits busy-poll (OMPI_MCA_mpi_yield_when_idle=0)" in n for n in p.notes), p.notes
    inherited = make_plan(job(), environ={**ENV, "OMPI_MCA_mpi_yield_when_idle": "0"}, tools=MPI_TOOLS,
                          run_dir="/runs/demo/r1", run_id="r1")
    assert "OMPI_MCA_mpi_yield_when_idle" not in inherited.env_dict()  # mpirun passes the caller's own on


def test_gloo_jobs_get_no_mpi_setting() -> None:
    p = plan(job(data="gloo"))
    assert p.launcher == "local" and "OMPI_MCA_mpi_yield_when_idle" not in p.env_dict()
    hydra = plan(job(launcher="mpi"), replace(MPI_TOOLS, mpi_implementation="mpich"))
    assert "OMPI_MCA_mpi_yield_when_idle" not in hydra.env_dict()


def _hierarchical(spec: JobSpec, tools: Tools = MPI_TOOLS) -> list:
    hierarchical = replace(spec, horovod=replace(spec.horovod, hierarchical_allreduce=True))
    return [n for n in plan(hierarchical, tools).notes if n.startswith("hierarchical allreduce")]


@pytest.mark.parametrize("nccl, says", [
    (False, "no effect, this Horovod build has no NCCL"),
    (True, "on for GPU tensors (NCCL within each host, MPI across hosts)"),
    (None, "takes effect only if Horovod was built with NCCL"),
])
def test_dry_run_says_what_hierarchical_allreduce_will_do_across_hosts(nccl, says) -> None:
    notes = _hierarchical(job(np=4, hosts=("a:2", "b:2")), replace(MPI_TOOLS, horovod_nccl=nccl))
    assert len(notes) == 1 and says in notes[0]


def test_hierarchical_allreduce_on_one_host_is_named_as_having_no_effect() -> None:
    notes = _hierarchical(job(np=2), replace(MPI_TOOLS, horovod_nccl=True))
    assert notes == ["hierarchical allreduce: no effect on one host (Horovod applies it only across hosts)"]


def test_no_hierarchical_note_unless_it_was_asked_for() -> None:
    assert not [n for n in plan(job(np=4, hosts=("a:2", "b:2"))).notes if "hierarchical" in n]
