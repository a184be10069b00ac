"""Open MPI's segmented ring for large allreduces on one machine: the rules file, when it is set, what the dry run says."""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import List

import pytest

from hvdrun_cli.launch import coll_rules
from hvdrun_cli.launch.placement import HostCpus
from hvdrun_cli.launch.planner import make_plan
from hvdrun_cli.launch.tools import Tools, cache_size_bytes, last_level_cache_bytes, version_from_text
from hvdrun_cli.spec.model import HorovodSpec, JobSpec, ResourcesSpec

MIB = 1 << 20
TOOLS = Tools(python="/venv/bin/python", mpirun="/usr/bin/mpirun", mpi_implementation="openmpi",
              mpi_version=(4, 1, 4), is_root=True, hostname="box", cores=2, horovod_mpi=True, cma=True,
              cpus=HostCpus((0, 1)), cache_bytes=32 * MIB)
RULES_PATH = "/runs/demo/r1/mpi-coll-rules.txt"


def job(np: int = 2, **resources) -> JobSpec:
    return JobSpec(framework="torch", name="demo", script="/jobs/train.py",
                   resources=ResourcesSpec(np=np, **resources), horovod=HorovodSpec(), run_root="/runs")


def plan(spec: JobSpec, tools: Tools = TOOLS, environ=None):
    return make_plan(spec, environ=environ or {"PATH": "/usr/bin"}, tools=tools, run_dir="/runs/demo/r1",
                     run_id="r1", rendezvous_port=4000)


def numbers(text: str) -> List[int]:
    """The integers Open MPI reads from a classic rules file ('#' starts a comment)."""
    return [int(n) for line in text.splitlines() for n in re.findall(r"\d+", line.split("#", 1)[0])]


def test_rules_file_gives_large_allreduces_the_segmented_ring_and_everything_else_the_fixed_decision() -> None:
    got = numbers(coll_rules.rules_text(2, 16 * MIB))
    assert got == [1,  # one collective
                   2,  # allreduce
                   2,  # two communicator-size rules
                   2, 2, 0, 0, 0, 0, 16 * MIB, 5, 0, 256 * 1024,  # from 2 ranks: fixed below 16 MiB, ring above
                   3, 1, 0, 0, 0, 0]  # from 3 ranks (more than the job has): fixed decision


def test_the_ring_starts_at_half_the_last_level_cache() -> None:
    assert coll_rules.segmented_from_bytes(32 * MIB) == 16 * MIB
    assert coll_rules.segmented_from_bytes(None) == 16 * MIB  # unreadable: a common server L3
    assert coll_rules.segmented_from_bytes(256 * 1024) == coll_rules.SEGMENT_BYTES  # never below one segment
    assert coll_rules.describe(coll_rules.SEGMENT_BYTES).startswith("; allreduces from 256 KiB ")  # small caches


def test_a_local_mpi_job_gets_the_rules_file_its_ranks_read_and_the_dry_run_says_so() -> None:
    p = plan(job())
    env = p.env_dict()
    assert env["OMPI_MCA_coll_tuned_use_dynamic_rules"] == "1"
    assert env["OMPI_MCA_coll_tuned_dynamic_rules_filename"] == RULES_PATH
    argv = list(p.processes[0].argv)
    assert argv[argv.index("OMPI_MCA_coll_tuned_dynamic_rules_filename") - 1] == "-x"  # reaches every rank
    files = {f.path: f.content for f in p.files}
    assert numbers(files[RULES_PATH])[3:13] == [2, 2, 0, 0, 0, 0, 16 * MIB, 5, 0, 256 * 1024]
    assert any(n.startswith("data plane:") and "allreduces from 16 MiB take Open MPI's segmented ring" in n
               for n in p.notes), p.notes
    assert "mpi-coll-rules.txt" in p.render_text()


def test_a_four_rank_job_covers_communicator_sizes_up_to_four() -> None:
    p = plan(job(np=4), replace(TOOLS, cores=4, cpus=HostCpus((0, 1, 2, 3))))
    content = {f.path: f.content for f in p.files}[RULES_PATH]
    assert numbers(content)[13:] == [5, 1, 0, 0, 0, 0]  # from 5 ranks on: fixed


@pytest.mark.parametrize("name, value", [
    ("OMPI_MCA_coll_tuned_use_dynamic_rules", "0"),
    ("OMPI_MCA_coll_tuned_allreduce_algorithm", "4"),
    ("OMPI_MCA_coll", "^tuned"),
])
def test_a_users_own_collective_settings_win_from_the_spec_or_the_environment(name: str, value: str) -> None:
    for p in (plan(replace(job(), env={name: value})), plan(job(), environ={"PATH": "/usr/bin", name: value})):
        assert "OMPI_MCA_coll_tuned_dynamic_rules_filename" not in p.env_dict()
        assert not any(f.path == RULES_PATH for f in p.files)
        assert not any("segmented ring" in n for n in p.notes)


def test_verbosity_settings_are_not_a_choice_of_algorithm() -> None:
    p = plan(replace(job(), env={"OMPI_MCA_coll_base_verbose": "30"}))
    assert p.env_dict()["OMPI_MCA_coll_tuned_use_dynamic_rules"] == "1"


@pytest.mark.parametrize("tools, spec", [
    (replace(TOOLS, mpi_version=(6, 0, 0)), job()),  # 6.x reads the classic file's sizes differently
    (replace(TOOLS, mpi_version=(3, 1, 6)), job()),
    (replace(TOOLS, mpi_version=None), job()),
    (replace(TOOLS, mpi_implementation="mpich"), replace(job(), launcher="mpi")),
    (TOOLS, job(np=1)),
    (TOOLS, job(np=4, hosts=("a:2", "b:2"))),  # across hosts: TCP between them, not measured
    (TOOLS, replace(job(), horovod=HorovodSpec(data_plane="gloo"))),
])
def test_no_rules_where_they_were_not_measured_or_would_be_read_otherwise(tools: Tools, spec: JobSpec) -> None:
    p = plan(spec, tools)
    assert "OMPI_MCA_coll_tuned_dynamic_rules_filename" not in p.env_dict()
    assert not any(f.path.endswith(coll_rules.RULES_FILE) for f in p.files)


def test_mpirun_version_is_read_from_its_banner() -> None:
    assert version_from_text("mpirun (Open MPI) 4.1.4\n\nReport bugs to http://www.open-mpi.org/community/help/\n") \
        == (4, 1, 4)
    assert version_from_text("mpirun (Open MPI) 5.0\n") == (5, 0)
    assert version_from_text("HYDRA build details:\n") is None


def test_last_level_cache_is_read_from_sysfs(tmp_path: Path) -> None:
    for index, (level, kind, size) in enumerate([(1, "Data", "32K"), (1, "Instruction", "32K"), (2, "Unified", "1024K"),
                                                 (3, "Unified", "32768K")]):
        entry = tmp_path / "cpu3" / "cache" / f"index{index}"
        entry.mkdir(parents=True)
        (entry / "level").write_text(f"{level}\n")
        (entry / "type").write_text(f"{kind}\n")
        (entry / "size").write_text(f"{size}\n")
    assert last_level_cache_bytes(3, root=str(tmp_path)) == 32 * MIB
    assert last_level_cache_bytes(0, root=str(tmp_path)) is None  # no such CPU
    assert cache_size_bytes("1M\n") == MIB and cache_size_bytes("512") == 512 and cache_size_bytes("big") is None
