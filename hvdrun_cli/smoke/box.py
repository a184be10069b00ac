"""How many ranks a smoke run uses on this machine: one per visible GPU, else two CPU ranks.

GPUs are counted without importing a framework (the launcher side must start fast and must not
need torch): ``nvidia-smi -L`` lists the GPUs the driver sees and ``CUDA_VISIBLE_DEVICES`` narrows
them, as it would for the ranks. Two CPU ranks are the fewest that exercise Horovod's all-reduce.
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from typing import Mapping, Optional, Tuple

CPU_RANKS = 2
NVIDIA_SMI_TIMEOUT_S = 15


@dataclass(frozen=True)
class BoxShape:
    """The ranks a smoke run starts here and why (``reason`` is printed to the user)."""

    np: int
    gpus_per_rank: int
    reason: str

    @property
    def device(self) -> str:
        return "gpu" if self.gpus_per_rank else "cpu"

    def describe(self) -> str:
        kind = "GPU" if self.gpus_per_rank else "CPU"
        return f"{self.np} {kind} rank{'s' if self.np != 1 else ''} over Gloo ({self.reason})"


def count_smi_gpus(smi_output: str) -> int:
    """GPUs in ``nvidia-smi -L`` output: one ``GPU <n>: <name> (UUID: ...)`` line each (MIG lines are indented)."""
    return sum(1 for line in smi_output.splitlines() if line.startswith("GPU "))


def count_visible_devices(value: str) -> int:
    """Devices named by ``CUDA_VISIBLE_DEVICES``; like CUDA, stop at the first invalid entry (``-1``)."""
    count = 0
    for entry in value.split(","):
        entry = entry.strip()
        if not entry or entry.startswith("-"):
            break
        count += 1
    return count


def gpu_count(smi_output: Optional[str], cuda_visible: Optional[str]) -> Tuple[int, str]:
    """(usable GPUs, how that was found) from what ``nvidia-smi -L`` printed (None: unavailable)."""
    visible = None if cuda_visible is None else count_visible_devices(cuda_visible)
    if smi_output is None:
        if visible:
            return visible, f"CUDA_VISIBLE_DEVICES={cuda_visible}; nvidia-smi unavailable"
        return 0, "no GPU: nvidia-smi unavailable"
    found = count_smi_gpus(smi_output)
    if visible is not None and visible < found:
        return visible, f"{found} GPUs, CUDA_VISIBLE_DEVICES={cuda_visible}"
    if found == 0:
        return 0, "no GPU listed by nvidia-smi -L"
    return found, f"{found} GPU{'s' if found != 1 else ''} listed by nvidia-smi -L"


def box_shape(gpus: int, reason: str, np: Optional[int] = None) -> BoxShape:
    """One rank per GPU, or ``CPU_RANKS`` CPU ranks without one; ``np`` (from ``--np``) replaces either."""
    gpus_per_rank = 1 if gpus > 0 else 0
    if np is None:
        return BoxShape(gpus if gpus > 0 else CPU_RANKS, gpus_per_rank, reason)
    return BoxShape(np, gpus_per_rank, f"--np {np}; {reason}")


def run_nvidia_smi() -> Optional[str]:
    """``nvidia-smi -L`` output, or None when the tool is missing or fails (no usable driver)."""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return None
    try:
        done = subprocess.run([tool, "-L"], capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_S,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def probe_box(environ: Mapping[str, str], np: Optional[int] = None) -> BoxShape:
    """The shape of this machine for a smoke run (runs ``nvidia-smi -L`` when it exists)."""
    gpus, reason = gpu_count(run_nvidia_smi(), environ.get("CUDA_VISIBLE_DEVICES"))
    return box_shape(gpus, reason, np)
