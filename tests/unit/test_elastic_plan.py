"""Elastic plans: the exact horovodrun command, the generated discovery script, and the script itself."""
from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from hvdrun_cli.errors import LaunchError
from hvdrun_cli.launch.elastic import discovery_script_text, main
from hvdrun_cli.launch.planner import make_plan
from hvdrun_cli.launch.tools import Tools
from hvdrun_cli.spec.model import ElasticSpec, HorovodSpec, JobSpec, ResourcesSpec

PY = "/venv/bin/python"
TOOLS = Tools(python=PY, horovodrun="/venv/bin/horovodrun", mpirun="/usr/bin/mpirun", hostname="box", cores=8)
RANK_CMD = [PY, "-m", "hvdrun_cli.launch.rank_io", "--", PY, "-m", "hvdrun_cli.adapters.worker"]


def elastic_spec(elastic: ElasticSpec, np=None, nics=(), launcher="auto") -> JobSpec:
    return JobSpec(framework="torch", name="demo", script="/jobs/train.py", elastic=elastic, launcher=launcher,
                   resources=ResourcesSpec(np=np), horovod=HorovodSpec(network_interfaces=tuple(nics)),
                   run_root="/runs")


def plan_for(spec: JobSpec, tools: Tools = TOOLS):
    return make_plan(spec, environ={}, tools=tools, run_dir="/runs/demo/r1", run_id="r1")


def test_discovery_script_plan_argv_is_exact_and_quotes_the_script_for_horovods_shell() -> None:
    spec = elastic_spec(ElasticSpec(min_np=2, max_np=4, discovery_script="/my jobs/discover.sh", reset_limit=3),
                        np=3, nics=["eth0"])
    plan = plan_for(spec)
    assert plan.launcher == "elastic"
    assert list(plan.processes[0].argv) == [
        "/venv/bin/horovodrun", "--gloo", "-np", "3", "--min-np", "2", "--max-np", "4",
        "--host-discovery-script", "'/my jobs/discover.sh'", "--reset-limit", "3",
        "--network-interfaces", "eth0", *RANK_CMD,
    ]
    assert plan.files == ()
    env = plan.env_dict()
    assert env["HVDJOB_RUN_ID"] == "r1" and env["HVDJOB_ATTEMPT"] == "0"
    assert env["OMP_NUM_THREADS"] == "2"  # 8 cores shared by the 3 ranks the job starts with


def test_watched_hostfile_gets_a_generated_discovery_script() -> None:
    spec = elastic_spec(ElasticSpec(min_np=1, hostfile="/jobs/hosts file.txt"), nics=["lo"])
    plan = plan_for(spec)
    argv = list(plan.processes[0].argv)
    assert argv[:6] == ["/venv/bin/horovodrun", "--gloo", "-np", "1", "--min-np", "1"]
    assert "--max-np" not in argv  # no upper bound
    assert argv[argv.index("--host-discovery-script") + 1] == "/bin/sh /runs/demo/r1/discover_hosts.sh"
    (script,) = plan.files
    assert script.path == "/runs/demo/r1/discover_hosts.sh"
    assert script.content == discovery_script_text(PY, "/jobs/hosts file.txt")
    assert script.content.splitlines()[-1] == f"exec {PY} -m hvdrun_cli.launch.elastic '/jobs/hosts file.txt'"


def test_without_network_interfaces_the_plan_says_horovod_waits_for_two_hosts() -> None:
    plan = plan_for(elastic_spec(ElasticSpec(discovery_script="/d.sh")))
    assert "--network-interfaces" not in plan.processes[0].argv
    assert any("waits for at least 2 hosts" in note for note in plan.notes)


def test_elastic_needs_horovodrun_and_gloo() -> None:
    with pytest.raises(LaunchError, match="horovodrun not found"):
        plan_for(elastic_spec(ElasticSpec(discovery_script="/d.sh")), tools=Tools(python=PY))
    with pytest.raises(LaunchError, match="launcher 'mpi' cannot run an elastic job"):
        plan_for(elastic_spec(ElasticSpec(discovery_script="/d.sh"), launcher="mpi"))


def test_elastic_jobs_use_horovods_rendezvous_not_ours() -> None:
    plan = make_plan(elastic_spec(ElasticSpec(discovery_script="/d.sh")), environ={}, tools=TOOLS,
                     run_dir="/runs/e/1", run_id="1")
    assert plan.rendezvous_port is None


def test_discovery_prints_every_hostfile_format_as_host_slots(tmp_path: Path, capsys) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("# workers\nnode1 slots=4\nnode2:2\nnode3\n")
    assert main([str(hosts)]) == 0
    assert capsys.readouterr().out == "node1:4\nnode2:2\nnode3:1\n"


def test_discovery_of_an_empty_hostfile_means_no_hosts_now(tmp_path: Path, capsys) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("# everything drained\n\n")
    assert main([str(hosts)]) == 0
    assert capsys.readouterr().out == ""


def test_discovery_of_a_broken_hostfile_fails_with_the_line(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("node1:2\nnode2 slots=many\n")
    done = subprocess.run([sys.executable, "-m", "hvdrun_cli.launch.elastic", str(hosts)], capture_output=True,
                          text=True, timeout=30, check=False)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith(f"hvdjob: host discovery: {hosts}:2: ")


def test_generated_script_runs_under_sh(tmp_path: Path) -> None:
    hosts = tmp_path / "my hosts"
    hosts.write_text("a:1\nb slots=2\n")
    script = tmp_path / "discover.sh"
    script.write_text(discovery_script_text(sys.executable, str(hosts)))
    done = subprocess.run(shlex.split(f"/bin/sh {shlex.quote(str(script))}"), capture_output=True, text=True,
                          timeout=30, check=False)
    assert (done.returncode, done.stdout) == (0, "a:1\nb:2\n"), done.stderr
