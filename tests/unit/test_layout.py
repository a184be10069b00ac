"""Rank layout: which rank runs where, with Horovod's rank/local/cross semantics."""
from __future__ import annotations

from typing import List, Tuple

import pytest

from hvdrun_cli.errors import LayoutError
from hvdrun_cli.hosts import Host, SlotInfo, assign_ranks, total_slots, used_hosts


def hosts(*pairs: Tuple[str, int]) -> Tuple[Host, ...]:
    return tuple(Host(name, slots) for name, slots in pairs)


def rows(layout: Tuple[SlotInfo, ...]) -> List[tuple]:
    """(hostname, rank, local_rank, local_size, cross_rank, cross_size) per rank."""
    return [(s.hostname, s.rank, s.local_rank, s.local_size, s.cross_rank, s.cross_size)
            for s in layout]


def test_partial_second_host() -> None:
    layout = assign_ranks(hosts(("a", 2), ("b", 2)), 3)
    assert {s.size for s in layout} == {3}
    assert rows(layout) == [
        ("a", 0, 0, 2, 0, 2),  # local rank 0 exists on a and b
        ("a", 1, 1, 2, 0, 1),  # local rank 1 only on a
        ("b", 2, 0, 1, 1, 2),
    ]


def test_full_two_hosts() -> None:
    layout = assign_ranks(hosts(("a", 2), ("b", 2)), 4)
    assert rows(layout) == [
        ("a", 0, 0, 2, 0, 2),
        ("a", 1, 1, 2, 0, 2),
        ("b", 2, 0, 2, 1, 2),
        ("b", 3, 1, 2, 1, 2),
    ]


def test_uneven_hosts() -> None:
    layout = assign_ranks(hosts(("a", 1), ("b", 3), ("c", 2)), 6)
    assert rows(layout) == [
        ("a", 0, 0, 1, 0, 3),
        ("b", 1, 0, 3, 1, 3),
        ("b", 2, 1, 3, 0, 2),
        ("b", 3, 2, 3, 0, 1),
        ("c", 4, 0, 2, 2, 3),
        ("c", 5, 1, 2, 1, 2),
    ]


def test_unused_hosts_are_left_out() -> None:
    layout = assign_ranks(hosts(("a", 4), ("b", 4), ("c", 4)), 2)
    assert rows(layout) == [("a", 0, 0, 2, 0, 1), ("a", 1, 1, 2, 0, 1)]
    assert used_hosts(layout) == hosts(("a", 2))


def test_used_hosts_for_host_flags() -> None:
    layout = assign_ranks(hosts(("a", 2), ("b", 2), ("c", 2)), 3)
    assert used_hosts(layout) == hosts(("a", 2), ("b", 1))


def test_single_local_host() -> None:
    layout = assign_ranks(hosts(("localhost", 2)), 2)
    assert rows(layout) == [("localhost", 0, 0, 2, 0, 1), ("localhost", 1, 1, 2, 0, 1)]


def test_too_many_processes() -> None:
    with pytest.raises(LayoutError) as info:
        assign_ranks(hosts(("a", 2), ("b", 1)), 4)
    assert str(info.value) == "Requested more processes (4) than there are available slots (3)"


@pytest.mark.parametrize("np", [0, -1, True, 2.0])
def test_np_must_be_positive_integer(np: object) -> None:
    with pytest.raises(LayoutError, match="number of processes must be a positive integer"):
        assign_ranks(hosts(("a", 2)), np)  # type: ignore[arg-type]


def test_no_hosts() -> None:
    with pytest.raises(LayoutError, match=r"available slots \(0\)"):
        assign_ranks((), 1)


def test_duplicate_hosts_rejected() -> None:
    with pytest.raises(LayoutError, match="listed twice"):
        assign_ranks(hosts(("a", 1), ("A", 1)), 2)


def test_total_slots() -> None:
    assert total_slots(hosts(("a", 2), ("b", 3))) == 5
    assert total_slots(()) == 0


@pytest.mark.parametrize("name, slots", [("a", 0), ("a", -2), ("", 1), ("-a", 1), ("a", "2")])
def test_host_rejects_bad_values(name: str, slots: object) -> None:
    with pytest.raises(ValueError):
        Host(name, slots)  # type: ignore[arg-type]


CASES = [
    ((("a", 2), ("b", 2)), 3),
    ((("a", 2), ("b", 2)), 4),
    ((("a", 1), ("b", 3), ("c", 2)), 6),
    ((("a", 1), ("b", 3), ("c", 2)), 4),
    ((("a", 3), ("b", 1), ("c", 3), ("d", 2)), 9),
    ((("a", 4), ("b", 4), ("c", 4)), 5),
    ((("a", 1),), 1),
]


@pytest.mark.parametrize("pairs, np", CASES)
def test_matches_horovod(pairs: tuple, np: int) -> None:
    horovod_hosts = pytest.importorskip(
        "horovod.runner.common.util.hosts", reason="horovod is not installed in this environment")
    expected = horovod_hosts.get_host_assignments(
        [horovod_hosts.HostInfo(name, slots) for name, slots in pairs], np, np)
    ours = assign_ranks(hosts(*pairs), np)
    assert [(s.hostname, s.rank, s.size, s.local_rank, s.local_size, s.cross_rank, s.cross_size)
            for s in ours] == [
        (s.hostname, s.rank, s.size, s.local_rank, s.local_size, s.cross_rank, s.cross_size)
        for s in expected]


def test_same_error_as_horovod() -> None:
    horovod_hosts = pytest.importorskip(
        "horovod.runner.common.util.hosts", reason="horovod is not installed in this environment")
    with pytest.raises(ValueError) as theirs:
        horovod_hosts.get_host_assignments([horovod_hosts.HostInfo("a", 2)], 3, 3)
    with pytest.raises(LayoutError) as ours:
        assign_ranks(hosts(("a", 2)), 3)
    assert str(ours.value) == str(theirs.value)
