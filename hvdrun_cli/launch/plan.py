"""The frozen launch plan: everything ``hvdjob run`` will do, decided before anything starts.

``--dry-run`` prints this object and ``execute`` runs exactly this object, so what a user reviews is
what runs. A plan holds only the environment variables it *adds*; the executor layers them over the
caller's environment at spawn time.
"""
from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from enum import Enum
from typing import Any, Dict, List, Mapping, Optional, Tuple

from hvdrun_cli.hosts import Host, SlotInfo

RANK_LINES_UP_TO = 512  # --dry-run lists every rank up to this many, then one line per host


class LauncherKind(str, Enum):
    """The closed set of ways hvdjob starts ranks (a ``str`` so plans print and compare as text)."""

    LOCAL = "local"  # hvdjob starts the ranks itself (Gloo rendezvous served in-process)
    GLOO = "gloo"  # horovodrun --gloo (over ssh)
    MPI = "mpi"  # mpirun
    SRUN = "srun"  # srun inside a Slurm allocation
    ELASTIC = "elastic"  # horovodrun elastic driver

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


@dataclass(frozen=True)
class ProcessSpec:
    """One process the executor starts on this machine.

    Launchers such as ``horovodrun``, ``mpirun`` and ``srun`` are a single process that starts the
    ranks; the built-in local launcher starts one process per rank itself.
    """

    argv: Tuple[str, ...]
    env: Tuple[Tuple[str, str], ...] = ()
    rank: Optional[int] = None  # set when this process *is* one rank

    def env_dict(self) -> Dict[str, str]:
        return dict(self.env)


@dataclass(frozen=True)
class GeneratedFile:
    """A file the executor writes before starting processes (resolved spec, hostfiles, ...)."""

    path: str
    content: str


@dataclass(frozen=True)
class LaunchPlan:
    launcher: LauncherKind
    processes: Tuple[ProcessSpec, ...]
    layout: Tuple[SlotInfo, ...]
    hosts: Tuple[Host, ...]
    run_dir: str
    run_id: str
    files: Tuple[GeneratedFile, ...] = ()
    env: Tuple[Tuple[str, str], ...] = ()  # added for every process (and so every rank)
    rendezvous_port: Optional[int] = None  # local/srun launches serve Gloo rendezvous in hvdjob itself
    rendezvous_addr: Optional[str] = None
    notes: Tuple[str, ...] = ()  # why choices were made (shown by --dry-run)
    attempt: int = 0
    bindings: Tuple[Tuple[int, str], ...] = ()  # (rank, its CPUs and why) for ranks on this machine

    @property
    def np(self) -> int:
        return len(self.layout)

    def env_dict(self) -> Dict[str, str]:
        return dict(self.env)

    def to_dict(self) -> Dict[str, Any]:
        cpus = dict(self.bindings)
        return {
            "launcher": str(self.launcher),
            "np": self.np,
            "run_id": self.run_id,
            "run_dir": self.run_dir,
            "attempt": self.attempt,
            "hosts": [{"name": h.name, "slots": h.slots} for h in self.hosts],
            "layout": [
                {
                    "rank": s.rank,
                    "hostname": s.hostname,
                    "local_rank": s.local_rank,
                    "local_size": s.local_size,
                    "cross_rank": s.cross_rank,
                    "cross_size": s.cross_size,
                    **({"cpus": cpus[s.rank]} if s.rank in cpus else {}),
                }
                for s in self.layout
            ],
            "env": dict(self.env),
            "processes": [
                {"argv": list(p.argv), "env": dict(p.env), "rank": p.rank} for p in self.processes
            ],
            "files": [{"path": f.path, "bytes": len(f.content.encode())} for f in self.files],
            "rendezvous": (
                {"addr": self.rendezvous_addr, "port": self.rendezvous_port}
                if self.rendezvous_port is not None
                else None
            ),
            "notes": list(self.notes),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def _layout_lines(self) -> List[str]:
        """One line per rank; beyond ``RANK_LINES_UP_TO`` ranks, one line per host (``--json`` has all)."""
        cpus = dict(self.bindings)
        if len(self.layout) <= RANK_LINES_UP_TO:
            return [
                f"  rank {s.rank:<3} host {s.hostname:<16} local_rank {s.local_rank}/{s.local_size}"
                f"  cross_rank {s.cross_rank}/{s.cross_size}"
                + (f"  cpus {cpus[s.rank]}" if s.rank in cpus else "")
                for s in self.layout
            ]
        lines = []
        layout = self.layout
        i = 0
        while i < len(layout):
            first = layout[i]
            last = layout[i + first.local_size - 1]
            lines.append(f"  ranks {first.rank}-{last.rank} host {first.hostname} ({first.local_size} local ranks)")
            i += first.local_size
        return lines

    def render_text(self) -> str:
        """Readable form for ``--dry-run``: commands as a shell would show them, one per line."""
        lines = [
            f"launcher:  {self.launcher}",
            (
                f"ranks:     {self.np} on {len({s.hostname for s in self.layout})} host(s)"
                if self.layout
                else "ranks:     decided at run time by host discovery (elastic)"
            ),
            f"run dir:   {self.run_dir}",
        ]
        for note in self.notes:
            lines.append(f"note:      {note}")
        if self.layout:
            lines.append("layout:")
        lines.extend(self._layout_lines())
        lines.append("environment added:")
        for key, value in self.env:
            lines.append(f"  {key}={shlex.quote(value)}")
        if self.rendezvous_port is not None:
            lines.append(f"rendezvous: Gloo rendezvous served by hvdjob on {self.rendezvous_addr}:{self.rendezvous_port}")
        lines.append("commands:")
        for proc in self.processes:
            prefix = f"  [rank {proc.rank}] " if proc.rank is not None else "  "
            extra = " ".join(f"{k}={shlex.quote(v)}" for k, v in proc.env)
            lines.append(prefix + (extra + " " if extra else "") + shlex.join(proc.argv))
        if self.files:
            lines.append("files written first:")
            for f in self.files:
                lines.append(f"  {f.path} ({len(f.content.encode())} bytes)")
        return "\n".join(lines)


def env_tuple(env: Mapping[str, str]) -> Tuple[Tuple[str, str], ...]:
    """Environment as a sorted tuple of pairs: hashable and printed in a stable order."""
    return tuple(sorted((str(k), str(v)) for k, v in env.items()))
