"""The CPU-block split: usable CPUs (affinity/cgroup/Slurm masks), NUMA nodes, GPUs, oversubscription."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from hvdrun_cli.launch import affinity
from hvdrun_cli.launch.placement import (
    HostCpus,
    format_cpulist,
    numa_nodes,
    parse_cpulist,
    parse_nvidia_topo,
    place,
)

TOPO_4GPU_2NUMA = (
    "\tGPU0\tGPU1\tGPU2\tGPU3\tNIC0\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID\n"
    "GPU0\t X \tNV12\tSYS\tSYS\tNODE\t0-23,48-71\t0\t\tN/A\n"
    "GPU1\tNV12\t X \tSYS\tSYS\tNODE\t0-23,48-71\t0\t\tN/A\n"
    "GPU2\tSYS\tSYS\t X \tNV12\tSYS\t24-47,72-95\t1\t\tN/A\n"
    "GPU3\tSYS\tSYS\tNV12\t X \tSYS\t24-47,72-95\t1\t\tN/A\n"
    "NIC0\tNODE\tNODE\tSYS\tSYS\t X \n"
    "\nLegend:\n\n  X    = Self\n  SYS  = Connection traversing PCIe as well as the SMP interconnect\n"
)


def cpus_of(placed):
    return [b.cpus for b in placed.bindings]


def test_cpulists_round_trip_the_kernel_format() -> None:
    assert parse_cpulist("0-3,8,10-11\n") == (0, 1, 2, 3, 8, 10, 11)
    assert format_cpulist((11, 0, 1, 2, 3, 8, 10)) == "0-3,8,10-11"
    assert parse_cpulist("") == ()


def test_two_ranks_on_two_cores_get_one_core_each() -> None:
    placed = place(HostCpus((0, 1)), 2)
    assert cpus_of(placed) == [(0,), (1,)]
    assert placed.threads == 1 and placed.warning is None


def test_a_cgroup_or_affinity_mask_limits_the_blocks_to_the_allowed_cpus() -> None:
    # e.g. a container limited to cpuset 4-7,12-15 (what sched_getaffinity reports inside it)
    placed = place(HostCpus(parse_cpulist("4-7,12-15")), 4)
    assert cpus_of(placed) == [(4, 5), (6, 7), (12, 13), (14, 15)]
    assert placed.threads == 2


def test_a_slurm_allocation_of_some_cores_is_split_among_the_local_tasks() -> None:
    # srun task mask of 3 allocated CPUs, 3 tasks on the node
    assert cpus_of(place(HostCpus((9, 10, 11)), 3)) == [(9,), (10,), (11,)]


def test_leftover_cpus_stay_unused_so_blocks_are_equal() -> None:
    placed = place(HostCpus(tuple(range(7))), 2)
    assert cpus_of(placed) == [(0, 1, 2), (3, 4, 5)]


def test_blocks_stay_inside_numa_nodes_and_spread_over_them() -> None:
    host = HostCpus(tuple(range(16)), numa=(tuple(range(8)), tuple(range(8, 16))))
    placed = place(host, 2)
    assert cpus_of(placed) == [tuple(range(8)), tuple(range(8, 16))]
    four = place(host, 4)
    assert cpus_of(four) == [(0, 1, 2, 3), (4, 5, 6, 7), (8, 9, 10, 11), (12, 13, 14, 15)]
    assert "NUMA node 1" in four.bindings[2].reason


def test_numa_mode_binds_each_rank_to_a_whole_node_round_robin() -> None:
    host = HostCpus(tuple(range(8)), numa=((0, 1, 2, 3), (4, 5, 6, 7)))
    assert cpus_of(place(host, 2, "numa")) == [(0, 1, 2, 3), (4, 5, 6, 7)]
    assert cpus_of(place(host, 4, "numa")) == [(0, 1, 2, 3), (4, 5, 6, 7), (0, 1, 2, 3), (4, 5, 6, 7)]


def test_oversubscription_warns_and_does_not_bind() -> None:
    placed = place(HostCpus((0, 1)), 3)
    assert not any(b.bound for b in placed.bindings)
    assert "oversubscribed" in placed.warning
    assert placed.threads == 1


def test_threads_per_rank_sets_the_block_size_and_too_many_threads_means_no_binding() -> None:
    assert cpus_of(place(HostCpus(tuple(range(8))), 2, threads=2)) == [(0, 1), (2, 3)]
    too_many = place(HostCpus(tuple(range(4))), 2, threads=3)
    assert not any(b.bound for b in too_many.bindings) and too_many.warning


def test_binding_none_binds_nothing_without_a_warning() -> None:
    placed = place(HostCpus((0, 1)), 2, "none")
    assert not any(b.bound for b in placed.bindings) and placed.warning is None


def test_nvidia_topology_gives_each_gpu_its_numa_node() -> None:
    assert parse_nvidia_topo(TOPO_4GPU_2NUMA) == (0, 0, 1, 1)
    assert parse_nvidia_topo("no GPUs here") == ()


def test_gpu_ranks_get_cpus_of_the_numa_node_nearest_their_gpu() -> None:
    node0 = tuple(range(0, 24)) + tuple(range(48, 72))
    node1 = tuple(range(24, 48)) + tuple(range(72, 96))
    host = HostCpus(tuple(range(96)), numa=(node0, node1), gpu_numa=parse_nvidia_topo(TOPO_4GPU_2NUMA))
    placed = place(host, 4, gpus_per_rank=1)
    assert [set(c) <= set(node0) for c in cpus_of(placed)] == [True, True, False, False]
    assert [set(c) <= set(node1) for c in cpus_of(placed)] == [False, False, True, True]
    assert not set(placed.bindings[0].cpus) & set(placed.bindings[1].cpus)
    assert "GPU 2 is on NUMA node 1" in placed.bindings[2].reason


def test_numa_nodes_are_read_from_sysfs_and_cut_to_the_usable_cpus(tmp_path: Path) -> None:
    for node, cpus in (("node0", "0-3"), ("node1", "4-7"), ("node10", "")):
        (tmp_path / node).mkdir()
        (tmp_path / node / "cpulist").write_text(cpus + "\n")
    (tmp_path / "possible").write_text("0-1\n")
    assert numa_nodes((0, 1, 2, 5, 6), str(tmp_path)) == ((0, 1, 2), (5, 6))
    assert numa_nodes((0,), str(tmp_path / "missing")) == ()


def test_the_supervisor_resolves_its_block_from_the_launchers_local_rank() -> None:
    usable = sorted(os.sched_getaffinity(0))
    env = {"HVDJOB_BINDING": "auto", "OMPI_COMM_WORLD_LOCAL_RANK": "0", "OMPI_COMM_WORLD_LOCAL_SIZE": "1"}
    assert affinity.resolve_cpus(env) == tuple(usable)
    assert affinity.resolve_cpus({"HVDJOB_CPUS": "0-1,3"}) == (0, 1, 3)
    assert affinity.resolve_cpus({"HVDJOB_BINDING": "none", "HOROVOD_LOCAL_RANK": "0", "HOROVOD_LOCAL_SIZE": "1"}) is None
    assert affinity.resolve_cpus({"HVDJOB_BINDING": "auto"}) is None  # no local rank: not bound


def test_bind_rank_sizes_the_thread_pools_unless_the_user_set_them() -> None:
    before = os.sched_getaffinity(0)
    one = min(before)
    try:
        added = affinity.bind_rank({"HVDJOB_CPUS": str(one), "OMP_NUM_THREADS": "4"})
        assert os.sched_getaffinity(0) == {one}
        assert added == {"MKL_NUM_THREADS": "1", "HVDJOB_THREADS_PER_RANK": "1"}
    finally:
        os.sched_setaffinity(0, before)


@pytest.mark.parametrize("mode", ["auto", "core", "numa", "none"])
def test_every_mode_gives_every_local_rank_a_binding(mode: str) -> None:
    placed = place(HostCpus(tuple(range(8)), numa=((0, 1, 2, 3), (4, 5, 6, 7))), 4, mode)
    assert [b.local_rank for b in placed.bindings] == [0, 1, 2, 3]


def test_auto_leaves_ranks_unbound_on_a_machine_other_work_keeps_busy() -> None:
    busy = place(HostCpus((0, 1)), 2, "auto", busy_share=0.9)
    assert not any(b.bound for b in busy.bindings) and "90% of the 2 usable CPUs" in busy.warning
    assert cpus_of(place(HostCpus((0, 1)), 2, "auto", busy_share=0.2)) == [(0,), (1,)]
    assert cpus_of(place(HostCpus((0, 1)), 2, "core", busy_share=0.9)) == [(0,), (1,)]
