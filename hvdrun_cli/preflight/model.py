"""What a preflight finds out about the hosts of a job, as plain frozen values.

Kept apart from the code that gathers it so the judgments (``compare.py``) and the rendering can be
tested without ssh, and so ``--json`` prints exactly what the text form summarises.
"""
from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple

# Packages whose versions must agree on every host: ranks load Horovod's extension built against
# one torch/TensorFlow, and the rank supervisor is hvdjob's own code.
COMPARED_PACKAGES = ("hvdjob", "horovod", "torch", "tensorflow")


@dataclass(frozen=True)
class Interface:
    """One IPv4 address of a network interface on a host."""

    name: str
    address: str
    prefixlen: int

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(f"{self.address}/{self.prefixlen}", strict=False)


@dataclass(frozen=True)
class HostFacts:
    """What the probe reported from inside a host, with the same Python the ranks will use."""

    hostname: str
    python: str
    executable: str
    packages: Mapping[str, Optional[str]]
    interfaces: Tuple[Interface, ...] = ()
    mpirun: Optional[str] = None

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> "HostFacts":
        return HostFacts(
            hostname=str(data["hostname"]),
            python=str(data["python"]),
            executable=str(data["executable"]),
            packages={str(k): (None if v is None else str(v)) for k, v in dict(data.get("packages", {})).items()},
            interfaces=tuple(
                Interface(str(i["name"]), str(i["address"]), int(i["prefixlen"])) for i in data.get("interfaces", ())
            ),
            mpirun=data.get("mpirun"),
        )


@dataclass(frozen=True)
class LinkResult:
    """Point-to-point numbers for one link of the ring: ``from_host``'s rank sends to ``to_host``'s."""

    from_host: str
    to_host: str
    latency_us: float
    bandwidth_mib_s: float


@dataclass(frozen=True)
class HostVerdict:
    """Whether one host is ready for the job, and why not."""

    host: str
    reachable: bool
    local: bool = False
    facts: Optional[HostFacts] = None
    usable_interfaces: Tuple[str, ...] = ()  # this host's interfaces on subnets every host shares
    link: Optional[LinkResult] = None
    problems: Tuple[str, ...] = ()  # each one makes the job fail
    notes: Tuple[str, ...] = ()  # worth knowing, not fatal
    seconds: float = 0.0  # how long reaching and probing the host took

    @property
    def ok(self) -> bool:
        return self.reachable and not self.problems

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


@dataclass(frozen=True)
class NetworkResult:
    """The collective run across the hosts: did it give the right answer, and how fast."""

    method: str  # "mpi4py ring" | "horovod gloo allreduce" | "skipped"
    ok: bool
    allreduce_mib: float = 0.0
    allreduce_seconds: Optional[float] = None
    allreduce_bandwidth_mib_s: Optional[float] = None  # bytes per rank / time
    links: Tuple[LinkResult, ...] = ()
    error: Optional[str] = None
    argv: Tuple[str, ...] = ()


@dataclass(frozen=True)
class PreflightReport:
    """Every host's verdict plus the cross-host facts behind them."""

    verdicts: Tuple[HostVerdict, ...]
    common_subnets: Tuple[str, ...] = ()
    network: Optional[NetworkResult] = None
    reference: Optional[HostFacts] = None  # the launching machine: versions are compared with it
    seconds: float = 0.0
    notes: Tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verdicts) and (self.network is None or self.network.ok)

    def to_dict(self) -> Dict[str, Any]:
        return {
            "ok": self.ok,
            "hosts": [v.to_dict() for v in self.verdicts],
            "common_subnets": list(self.common_subnets),
            "network": None if self.network is None else asdict(self.network),
            "reference": None if self.reference is None else asdict(self.reference),
            "seconds": round(self.seconds, 3),
            "notes": list(self.notes),
        }
