"""What launch tools this machine has, probed once and passed into the pure plan builders.

Builders never call ``which`` or run ``mpirun --version`` themselves (so they are testable with a
fake ``Tools``); the CLI probes here and hands the answers in.
"""
from __future__ import annotations

import importlib.util
import mmap
import os
import re
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

from hvdrun_cli.launch.cpu_load import measure_busy_share
from hvdrun_cli.launch.data_plane import cma_works
from hvdrun_cli.launch.placement import HostCpus, probe_host_cpus


@dataclass(frozen=True)
class Tools:
    python: str  # interpreter every rank runs (the one running hvdjob)
    horovodrun: Optional[str] = None
    mpirun: Optional[str] = None
    mpi_implementation: Optional[str] = None  # "openmpi" | "mpich" | "intel" | "unknown"
    srun: Optional[str] = None
    sbatch: Optional[str] = None
    is_root: bool = False
    hostname: str = "localhost"
    cores: int = 1
    horovod_mpi: Optional[bool] = None  # Horovod's extension links MPI (None: not known)
    cma: Optional[bool] = None  # cross-memory attach works here (Open MPI's single-copy shared memory)
    cpus: Optional[HostCpus] = None  # this host's usable CPUs and NUMA nodes
    busy_share: Optional[float] = None  # share of the usable CPUs other work kept busy just before the job
    horovod_nccl: Optional[bool] = None  # Horovod's extension calls NCCL (None: not probed or not known)
    mpi_version: Optional[Tuple[int, ...]] = None  # mpirun's version, e.g. (4, 1, 4)
    cache_bytes: Optional[int] = None  # last-level CPU cache of the first usable CPU (None: not readable)

    def host_cpus(self) -> HostCpus:
        return self.cpus or HostCpus(tuple(range(max(1, self.cores))))


def _which(name: str) -> Optional[str]:
    """Prefer the tool next to our interpreter (the venv's horovodrun) over one on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name)


def mpi_flavour(mpirun: str) -> Tuple[str, Optional[Tuple[int, ...]]]:
    """Which MPI ``mpirun`` belongs to, and its version, from one ``mpirun --version``."""
    try:
        out = subprocess.run(
            [mpirun, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown", None
    return implementation_from_version_text(out), version_from_text(out)


def implementation_from_version_text(out: str) -> str:
    text = out.lower()
    if "open mpi" in text or "open-mpi" in text or "openrte" in text:
        return "openmpi"
    if "intel" in text:
        return "intel"
    if "mpich" in text or "hydra" in text:
        return "mpich"
    return "unknown"


def version_from_text(out: str) -> Optional[Tuple[int, ...]]:
    """The first ``N.N[.N]`` in ``--version`` output ("mpirun (Open MPI) 4.1.4" -> (4, 1, 4))."""
    found = re.search(r"\b(\d+)\.(\d+)(?:\.(\d+))?", out)
    if not found:
        return None
    return tuple(int(part) for part in found.groups() if part is not None)


def cache_size_bytes(text: str) -> Optional[int]:
    """sysfs cache ``size`` ("32768K", "1M", "512") in bytes."""
    found = re.fullmatch(r"\s*(\d+)\s*([KMG]?)\s*", text)
    if not found:
        return None
    return int(found.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[found.group(2)]


def last_level_cache_bytes(cpu: int, root: str = "/sys/devices/system/cpu") -> Optional[int]:
    """Size of the highest-level cache CPU ``cpu`` uses (its L3 on most servers), from sysfs."""
    best: Tuple[int, Optional[int]] = (0, None)
    folder = Path(root) / f"cpu{cpu}" / "cache"
    try:
        for entry in sorted(folder.glob("index*")):
            level = int((entry / "level").read_text().strip())
            kind = (entry / "type").read_text().strip()
            if kind in ("Unified", "Data") and level >= best[0]:
                best = (level, cache_size_bytes((entry / "size").read_text()))
    except (OSError, ValueError):
        return None
    return best[1]


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def horovod_extension() -> Optional[Path]:
    """The compiled library of Horovod's PyTorch (else TensorFlow) binding, found without importing it."""
    try:
        spec = importlib.util.find_spec("horovod")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0])
    libs = sorted(root.glob("torch/mpi_lib_v2*.so")) + sorted(root.glob("tensorflow/mpi_lib*.so"))
    return libs[0] if libs else None


def extension_contains(marker: bytes) -> Optional[bool]:
    """Whether Horovod's compiled library holds ``marker`` (a linked library's or a symbol's name)."""
    lib = horovod_extension()
    if lib is None:
        return None
    try:
        with open(lib, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return data.find(marker) >= 0
    except (OSError, ValueError):
        return None


def horovod_built_with_mpi() -> Optional[bool]:
    """Whether Horovod's extension links libmpi (None: not known)."""
    return extension_contains(b"libmpi.so")


def horovod_built_with_nccl() -> Optional[bool]:
    """Whether Horovod's extension calls NCCL, linked shared or static (a full scan: ~0.1 s on a CPU build)."""
    return extension_contains(b"ncclAllReduce")


def probe_tools(need_mpi_flavour: bool = True, nccl: bool = False) -> Tools:
    """What this machine has for a launch; ``nccl`` also reads whether Horovod was built with NCCL."""
    mpirun = _which("mpirun")
    cpus = probe_host_cpus(os.environ)
    flavour, version = mpi_flavour(mpirun) if (mpirun and need_mpi_flavour) else (None, None)
    return Tools(
        python=sys.executable,
        horovodrun=_which("horovodrun"),
        mpirun=mpirun,
        mpi_implementation=flavour,
        srun=_which("srun"),
        sbatch=_which("sbatch"),
        is_root=(os.geteuid() == 0),
        hostname=socket.gethostname(),
        cores=available_cores(),
        horovod_mpi=horovod_built_with_mpi() if mpirun else None,
        cma=cma_works() if mpirun else None,
        cpus=cpus,
        busy_share=measure_busy_share(cpus.cpus),
        horovod_nccl=horovod_built_with_nccl() if nccl else None,
        mpi_version=version,
        cache_bytes=last_level_cache_bytes(cpus.cpus[0]) if cpus.cpus else None,
    )
