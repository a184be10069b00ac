"""Which rank runs where: a pure function over typed hosts, with Horovod's semantics.

Mirrors horovod ``runner/common/util/hosts.py:get_host_assignments``: ranks fill host 0's slots,
then host 1's, ...; a rank's cross communicator groups the hosts that have a rank with the same
local rank, so hosts with fewer ranks drop out of the higher local ranks' cross groups.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

from hvdrun_cli.errors import LayoutError, Problem
from hvdrun_cli.hosts.model import Host, SlotInfo


def total_slots(hosts: Sequence[Host]) -> int:
    """How many ranks the hosts can hold."""
    return sum(host.slots for host in hosts)


def assign_ranks(hosts: Sequence[Host], np: int) -> Tuple[SlotInfo, ...]:
    """Place ``np`` ranks on ``hosts`` in order; LayoutError when they do not fit."""
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

    # cross_members[local_rank] = names of the hosts that run that local rank, in host order.
    cross_members: Dict[int, List[str]] = {}
    for name, used in placed:
        for local_rank in range(used):
            cross_members.setdefault(local_rank, []).append(name)

    layout: List[SlotInfo] = []
    for name, used in placed:
        for local_rank in range(used):
            members = cross_members[local_rank]
            layout.append(SlotInfo(
                rank=len(layout), size=np, local_rank=local_rank, local_size=used,
                cross_rank=members.index(name), cross_size=len(members), hostname=name))
    return tuple(layout)


def used_hosts(layout: Sequence[SlotInfo]) -> Tuple[Host, ...]:
    """The hosts a layout actually uses, each with its rank count (for ``-H a:2,b:1``)."""
    counts: Dict[str, int] = {}
    for slot in layout:
        counts[slot.hostname] = counts.get(slot.hostname, 0) + 1
    return tuple(Host(name, count) for name, count in counts.items())
