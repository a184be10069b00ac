"""What ``hvdjob doctor`` says about GPUs: how Horovod was built for them, and what this machine shows.

Both halves matter and differ on purpose: a login node or a CI runner without GPUs can hold a CUDA
build (``NCCL built, no GPU visible`` is then the expected, healthy answer), and a GPU node can hold
a CPU build (its jobs would reduce gradients on the CPU: worth a warning, not a failure).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, Mapping, Optional


@dataclass(frozen=True)
class GpuFacts:
    nccl_built: bool
    nccl_version: Optional[str]
    cuda_built: bool
    visible: int
    how: str  # how the visible GPUs were counted (nvidia-smi, CUDA_VISIBLE_DEVICES)

    @property
    def summary(self) -> str:
        """One line; ``NCCL built, no GPU visible`` on a GPU-less machine with a CUDA build."""
        built = "NCCL built" if self.nccl_built else "CPU build (no NCCL)"
        seen = "no GPU visible" if self.visible == 0 else f"{self.visible} GPU{'s' if self.visible != 1 else ''} visible"
        return f"{built}, {seen}"

    @property
    def warning(self) -> Optional[str]:
        if self.visible and not self.nccl_built:
            return (f"{self.visible} GPU(s) visible but Horovod was built without NCCL: GPU jobs reduce on the CPU "
                    "(rebuild with make setup-gpu)")
        return None

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data["summary"] = self.summary
        return data


def nccl_version_from_code(code: Any) -> Optional[str]:
    """NCCL's version from what ``hvd.nccl_built()`` returns (``NCCL_VERSION_CODE``: 23007 is 2.30.7)."""
    if isinstance(code, bool) or not isinstance(code, int) or code <= 1:
        return None
    if code >= 20900:  # NCCL >= 2.9: major * 10000 + minor * 100 + patch
        return f"{code // 10000}.{code // 100 % 100}.{code % 100}"
    return f"{code // 1000}.{code // 100 % 10}.{code % 100}"  # older: major * 1000 + minor * 100 + patch


def gpu_facts(framework_results: Mapping[str, Mapping[str, Any]], visible: int, how: str) -> GpuFacts:
    """Combine what the framework probes found Horovod built with and the GPU count of this machine."""
    nccl = cuda = False
    version: Optional[str] = None
    for result in framework_results.values():
        built = result.get("built") or {}
        nccl = nccl or bool(built.get("nccl"))
        cuda = cuda or bool(built.get("cuda"))
        version = version or result.get("nccl_version")
    return GpuFacts(nccl_built=nccl, nccl_version=version, cuda_built=cuda, visible=visible, how=how)
