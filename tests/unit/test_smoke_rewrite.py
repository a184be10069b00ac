"""Rewriting a spec for the smoke box: cluster settings dropped, steps/checkpoints/dumps set."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from hvdrun_cli.adapters.base import ENV_PARAM_DUMP
from hvdrun_cli.launch.planner import make_plan
from hvdrun_cli.launch.tools import Tools
from hvdrun_cli.smoke.box import BoxShape
from hvdrun_cli.smoke.rewrite import (
    PARAM_DUMP_ENV,
    box_overrides,
    for_this_box,
    launch_spec,
    log_interval_for,
    resume_step_for,
)
from hvdrun_cli.smoke.runner import plan_steps
from hvdrun_cli.spec import Override, load_spec
from hvdrun_cli.errors import SpecError
from hvdrun_cli.spec.model import SlurmSpec

JOBS = Path(__file__).resolve().parents[2] / "jobs"
CPU_BOX = BoxShape(2, 0, "no GPU")
TOOLS = Tools(python="/venv/bin/python", horovodrun="/venv/bin/horovodrun", mpirun="/usr/bin/mpirun",
              mpi_implementation="openmpi", hostname="ci-box", cores=4)


def _for_box(path, work_dir, box=CPU_BOX, user=()):
    return for_this_box(load_spec(path, [*user, *box_overrides(box, str(work_dir))]))


def test_cluster_spec_becomes_a_local_gloo_job(tmp_path):
    original = load_spec(JOBS / "cluster-digits.yaml")
    assert original.launcher == "mpi" and len(original.resources.hosts) == 2 and original.slurm.nodes == 2

    spec = _for_box(JOBS / "cluster-digits.yaml", tmp_path)
    assert spec.resources.hosts == ("localhost:2",)
    assert (spec.resources.np, spec.resources.gpus_per_rank, spec.launcher, spec.restarts) == (2, 0, "gloo", 0)
    assert spec.slurm == SlurmSpec() and spec.elastic is None
    assert spec.horovod.network_interfaces == () and spec.horovod.threads_per_rank is None
    assert spec.run_root == str(tmp_path)
    assert (spec.checkpoint.dir, spec.checkpoint.resume) == (str(tmp_path / "checkpoints"), "auto")
    # What the job trains and how Horovod reduces stays as written.
    assert spec.train == original.train
    assert spec.horovod.compression == "fp16" and spec.horovod.fusion_threshold_mb == 64
    assert spec.env == {"NCCL_DEBUG": "WARN"}


def test_rewritten_cluster_spec_plans_local_ranks(tmp_path):
    spec = _for_box(JOBS / "cluster-digits.yaml", tmp_path)
    plan = make_plan(spec, environ={"SLURM_JOB_ID": "7", "SLURM_JOB_NODELIST": "n[1-2]"}, tools=TOOLS,
                     run_dir=str(tmp_path / "run"), run_id="r1", rendezvous_port=4242)
    assert plan.launcher == "local" and len(plan.processes) == 2
    assert {slot.hostname for slot in plan.layout} == {"localhost"}
    env = plan.env_dict()
    assert "NCCL_SOCKET_IFNAME" not in env and env["HOROVOD_GLOO_IFACE"] == "lo"
    assert env["OMP_NUM_THREADS"] == "2"  # 4 cores / 2 ranks, not the cluster's 8


def test_paths_that_only_exist_on_the_cluster_are_dropped_before_validation(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text(textwrap.dedent("""\
        framework: torch
        name: elastic-job
        train: {max_steps: 1000}
        resources: {hostfile: /cluster/etc/hosts, np: 16}
        elastic: {min_np: 8, max_np: 16, hostfile: /cluster/etc/elastic-hosts}
        horovod: {timeline: /cluster/scratch/timeline.json}
        checkpoint: {resume: /cluster/ckpt/ckpt-000001000.pt}
        restarts: 3
        """))
    with pytest.raises(SpecError) as info:
        load_spec(job)  # as written, it cannot load here
    assert {p.key for p in info.value.problems} == {"resources.hostfile", "elastic.hostfile", "checkpoint.resume"}
    spec = _for_box(job, tmp_path / "work")
    assert spec.elastic is None and spec.resources.hostfile is None
    assert spec.resources.hosts == ("localhost:2",) and spec.resources.np == 2
    assert spec.horovod.timeline is None and spec.checkpoint.resume == "auto" and spec.restarts == 0


def test_gpu_box_and_user_overrides(tmp_path):
    user = [Override("train.lr", "0.2", "--set"), Override("resources.np", "16", "--set")]
    spec = _for_box(JOBS / "digits-torch.yaml", tmp_path, BoxShape(4, 1, "4 GPUs"), user)
    assert spec.train.lr == 0.2  # the user's --set is kept
    assert (spec.resources.np, spec.resources.gpus_per_rank) == (4, 1)  # the box decides the ranks


def test_work_dir_with_yaml_special_characters(tmp_path):
    odd = tmp_path / "a: b #c"
    spec = _for_box(JOBS / "digits-torch.yaml", odd)
    assert spec.run_root == str(odd) and spec.checkpoint.dir == str(odd / "checkpoints")


def test_launch_spec_managed_sets_steps_interval_and_dump(tmp_path):
    spec = _for_box(JOBS / "cluster-digits.yaml", tmp_path)
    one = launch_spec(spec, "/w/launch-1/params", max_steps=10, log_interval=2)
    assert (one.train.max_steps, one.train.log_interval) == (10, 2)
    assert one.env == {"NCCL_DEBUG": "WARN", PARAM_DUMP_ENV: "/w/launch-1/params"}
    assert one.train.lr == spec.train.lr and one.resources == spec.resources


def test_launch_spec_script_mode_only_adds_the_dump(tmp_path):
    spec = _for_box(JOBS / "script-torch.yaml", tmp_path)
    one = launch_spec(spec, "/w/p", max_steps=None)
    assert one.train is None and one.args == spec.args and one.env == {PARAM_DUMP_ENV: "/w/p"}


def test_dump_variable_is_the_rank_sides():
    assert PARAM_DUMP_ENV == ENV_PARAM_DUMP == "HVDJOB_PARAM_DUMP"


@pytest.mark.parametrize("steps, interval, resume", [(4, 1, 2), (20, 2, 10), (25, 2, 12), (200, 20, 100)])
def test_step_arithmetic(steps, interval, resume):
    assert (log_interval_for(steps), resume_step_for(steps)) == (interval, resume)


def test_plan_steps_two_launches_for_managed_one_for_script(tmp_path):
    managed = plan_steps(_for_box(JOBS / "digits-torch.yaml", tmp_path), 20)
    assert [(s.name, s.max_steps) for s in managed] == [("launch-1", 10), ("launch-2", 20)]
    script = plan_steps(_for_box(JOBS / "script-torch.yaml", tmp_path), 20)
    assert [(s.name, s.max_steps) for s in script] == [("launch-1", None)]
