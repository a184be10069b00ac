"""Everything a plan builder needs, gathered in one frozen object."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from hvdrun_cli.hosts import Host, SlotInfo
from hvdrun_cli.launch.tools import Tools
from hvdrun_cli.launch.data_plane import DataPlane
from hvdrun_cli.spec.model import JobSpec

RANK_SUPERVISOR = "hvdrun_cli.launch.rank_io"
RANK_WORKER = "hvdrun_cli.adapters.worker"
LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "localhost.localdomain"})


@dataclass(frozen=True)
class PlanInputs:
    spec: JobSpec
    hosts: Tuple[Host, ...]
    layout: Tuple[SlotInfo, ...]
    tools: Tools
    run_dir: str
    run_id: str
    spec_json_path: str
    rank_env: Tuple[Tuple[str, str], ...]  # from rank_env.rank_env(), same for every rank
    attempt: int = 0
    forward_env_names: Tuple[str, ...] = ()  # caller's variables launchers must pass on (PATH, ...)
    rendezvous_port: Optional[int] = None
    rendezvous_addr: Optional[str] = None
    data_plane: Optional[DataPlane] = None  # the MPI data plane chosen for a local job

    def rank_env_dict(self) -> Dict[str, str]:
        return dict(self.rank_env)

    def rank_command(self) -> Tuple[str, ...]:
        """What runs as each rank: the output supervisor wrapping the rank-side worker."""
        py = self.tools.python
        return (py, "-m", RANK_SUPERVISOR, "--", py, "-m", RANK_WORKER)


def is_local_host(name: str, own_hostname: str) -> bool:
    return name in LOCAL_NAMES or name == own_hostname or name == own_hostname.split(".")[0]


def all_local(hosts: Tuple[Host, ...], own_hostname: str) -> bool:
    return all(is_local_host(h.name, own_hostname) for h in hosts)


def hosts_flag(layout: Tuple[SlotInfo, ...]) -> str:
    """``a:2,b:1``: hosts in rank order with the number of ranks placed on each."""
    counts: Dict[str, int] = {}
    for slot in layout:
        counts[slot.hostname] = counts.get(slot.hostname, 0) + 1
    return ",".join(f"{name}:{n}" for name, n in counts.items())
