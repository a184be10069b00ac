"""The typed values every host source produces: hosts with slot counts and per-rank slots.

Hostfiles, ``-H`` lists, Slurm and PBS allocations all end up as a tuple of :class:`Host`, so the
layout and the launchers never see (and never re-parse) host strings.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, NamedTuple, Optional

# Letters, digits, '.', '_', '-'; not starting with '-' or '.', so a name can never be read as a
# flag by mpirun/srun/ssh.  ':' is excluded because it separates the slot count in 'host:N'.
_HOST_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")


def host_name_problem(name: str) -> Optional[str]:
    """Why ``name`` cannot be used as a host name (without the name itself), or None."""
    if not name:
        return "missing host name"
    if not _HOST_NAME.fullmatch(name):
        return "invalid host name: use letters, digits, '.', '_' and '-' (no '-' or '.' first)"
    return None


@dataclass(frozen=True)
class Host:
    """A machine and how many ranks may run on it."""

    name: str
    slots: int

    def __post_init__(self) -> None:
        # Parsers report user mistakes as HostfileError before building a Host: this is a bug check.
        problem = host_name_problem(self.name)
        if problem:
            raise ValueError(f"{problem} (got {self.name!r})")
        if isinstance(self.slots, bool) or not isinstance(self.slots, int) or self.slots < 1:
            raise ValueError(f"slots must be a positive integer (got {self.slots!r})")


class SlotInfo(NamedTuple):
    """Where one rank runs and its place in the world, local and cross communicators.

    Same meaning as Horovod's ``HOROVOD_RANK``/``SIZE``/``LOCAL_RANK``/``LOCAL_SIZE``/
    ``CROSS_RANK``/``CROSS_SIZE``/``HOSTNAME`` for that rank. A NamedTuple (immutable like the
    hosts): a 20,000-host layout has 160,000 of them, built 5x faster than frozen dataclasses.
    """

    rank: int
    size: int
    local_rank: int
    local_size: int
    cross_rank: int
    cross_size: int
    hostname: str


def format_host_list(hosts: Iterable[Host]) -> str:
    """``a:2,b:1``: the form ``horovodrun -H`` and ``mpirun -H`` take (display or argv value)."""
    return ",".join(f"{h.name}:{h.slots}" for h in hosts)
