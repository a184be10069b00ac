"""Which hosts a restart runs on after a host dropped off the network.

A restart on the same hosts would only meet the lost host again (the reachability gate names it, or
worse, it half answers). When the other hosts still have slots for every rank, the next attempt
leaves the lost ones out and keeps the job's size (the ranks resume from the newest checkpoint,
whose state does not depend on where the ranks run); when they do not, the job fails with one line
that says what is missing. Pure: hosts in, hosts out.
"""
from __future__ import annotations

from typing import Collection, Sequence, Tuple

from hvdrun_cli.errors import LaunchError
from hvdrun_cli.hosts import Host, assign_ranks, total_slots


def hosts_without(hosts: Sequence[Host], lost: Collection[str], np: int) -> Tuple[Host, ...]:
    """``hosts`` minus the ``lost`` ones, in their order; ``LaunchError`` when they cannot hold ``np`` ranks."""
    remaining = tuple(h for h in hosts if h.name not in lost)
    slots = total_slots(remaining)
    if slots < np:
        left = ", ".join(f"{h.name}:{h.slots}" for h in remaining) or "none"
        raise LaunchError(
            f"cannot restart without {_names(lost, hosts)} (lost): the other hosts have {slots} slot"
            f"{'' if slots == 1 else 's'} for {np} ranks (left: {left}); list a spare host in resources.hosts "
            "or lower resources.np"
        )
    return remaining


def exclusion_line(lost: Collection[str], hosts: Sequence[Host], remaining: Sequence[Host], np: int) -> str:
    """``leaving out hvdhost2 (lost); ranks on hvdhost1, hvdhost3``: what the next attempt does."""
    used = list(dict.fromkeys(slot.hostname for slot in assign_ranks(tuple(remaining), np)))
    return f"leaving out {_names(lost, hosts)} (lost); ranks on {', '.join(used)}"


def _names(lost: Collection[str], hosts: Sequence[Host]) -> str:
    """The lost hosts in the hosts' order (then any others), comma-separated."""
    ordered = [h.name for h in hosts if h.name in lost]
    ordered += sorted(set(lost) - set(ordered))
    return ", ".join(ordered)
