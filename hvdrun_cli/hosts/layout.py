"""Which rank runs where: a pure function over typed hosts, with Horovod's semantics.

Mirrors horovod ``runner/common/util/hosts.py:get_host_assignments``: ranks fill host 0's slots,
then host 1's, ...; a rank's cross communicator groups the hosts that have a rank with the same
local rank, so hosts with fewer ranks drop out of the higher local ranks' cross groups.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Dict, List, Sequence, Tuple

from hvdrun_cli.errors import LayoutError, Problem
from hvdrun_cli.hosts.model import Host, SlotInfo


def total_slots(hosts: Sequence[Host]) -> int:
    """How many ranks the hosts can hold."""
    return sum(host.slots for host in hosts)


def assign_ranks(hosts: Sequence[Host], np: int) -> Tuple[SlotInfo, ...]:
    """Place ``np`` ranks on ``hosts`` in order; LayoutError when they do not fit.

    Remembered for the last few inputs: validation and the plan both lay out the same job, and at
    20,000 hosts x 8 slots one layout costs a good part of a second."""
    if isinstance(np, int) and not isinstance(np, bool):
        return _assign_ranks(tuple(hosts), np)
    return _layout(hosts, np)


@lru_cache(maxsize=4)
def _assign_ranks(hosts: Tuple[Host, ...], np: int) -> Tuple[SlotInfo, ...]:
    return _layout(hosts, np)


def _layout(hosts: Sequence[Host], np: int) -> Tuple[SlotInfo, ...]:
    if isinstance(np, bool) or not isinstance(np, int) or np < 1:
        raise LayoutError(Problem("number of processes must be a positive integer", got=np))
    names = [host.name.lower() for host in hosts]
    if len(set(names)) != len(names):
        raise LayoutError(Problem("a host is listed twice", got=[h.name for h in hosts]))
    available = total_slots(hosts)
    if np > available:
        raise LayoutError(Problem(
            f"Requested more processes ({np}) than there are available slots ({available})"))

    placed: List[Tuple[str, int]] = []  # (host name, local ranks used) for hosts that get ranks
    left = np
    for host in hosts:
        if left == 0:
            break
        used = min(host.slots, left)
        placed.append((host.name, used))
        left -= used

    # A host's cross rank for local rank k is how many earlier hosts also run local rank k; hosts
    # are in order, so counting as we go gives it in one pass (linear in ranks, not hosts x ranks).
    cross_size: Dict[int, int] = {}
    for _name, used in placed:
        for local_rank in range(used):
            cross_size[local_rank] = cross_size.get(local_rank, 0) + 1

    layout: List[SlotInfo] = []
    seen: Dict[int, int] = {}
    for name, used in placed:
        for local_rank in range(used):
            cross_rank = seen.get(local_rank, 0)
            seen[local_rank] = cross_rank + 1
            layout.append(SlotInfo(
                rank=len(layout), size=np, local_rank=local_rank, local_size=used,
                cross_rank=cross_rank, cross_size=cross_size[local_rank], hostname=name))
    return tuple(layout)


def used_hosts(layout: Sequence[SlotInfo]) -> Tuple[Host, ...]:
    """The hosts a layout actually uses, each with its rank count (for ``-H a:2,b:1``)."""
    counts: Dict[str, int] = {}
    for slot in layout:
        counts[slot.hostname] = counts.get(slot.hostname, 0) + 1
    return tuple(Host(name, count) for name, count in counts.items())
