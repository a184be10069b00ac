"""What ``hvdjob doctor`` says about GPUs, from the facts its probes gather."""
from __future__ import annotations

from typing import Any, Dict

import pytest

from hvdrun_cli.cli.doctor import render
from hvdrun_cli.doctor.facts import Facts
from hvdrun_cli.doctor.gpu import gpu_facts, nccl_version_from_code
from hvdrun_cli.smoke.box import gpu_count
from tests.buildtools_fakes import NVIDIA_SMI_8_A100

CUDA_BUILD = {"torch": {"ok": True, "version": "2.14.1", "nccl_version": "2.30.7",
                        "built": {"mpi": True, "gloo": True, "nccl": True, "cuda": True, "ddl": False,
                                  "ccl": False, "rocm": False}}}
CPU_BUILD = {"torch": {"ok": True, "version": "2.13.0+cpu", "nccl_version": None,
                       "built": {"mpi": True, "gloo": True, "nccl": False, "cuda": False, "ddl": False,
                                 "ccl": False, "rocm": False}}}


def facts_with(frameworks: Dict[str, Any], visible: int, how: str) -> Facts:
    gpu = gpu_facts(frameworks, visible, how)
    facts = Facts(hvdjob="0.1.0", python="3.11.7", python_executable="/venv/bin/python", horovod="0.28.1",
                  frameworks=frameworks, tools={}, gpu=gpu.to_dict())
    if gpu.warning:
        facts.warnings.append(gpu.warning)
    return facts


@pytest.mark.parametrize("code, version", [(23007, "2.30.7"), (22703, "2.27.3"), (2804, "2.8.4"),
                                           (True, None), (1, None), (0, None), (None, None)])
def test_nccl_version_from_horovods_nccl_built(code: Any, version: Any) -> None:
    assert nccl_version_from_code(code) == version


def test_a_cuda_build_on_a_gpu_less_machine_is_healthy() -> None:
    facts = facts_with(CUDA_BUILD, *gpu_count(None, None))
    text = render(facts)
    assert "  GPU:          NCCL built, no GPU visible (NCCL 2.30.7); no GPU: nvidia-smi unavailable" in text
    assert "[X] NCCL" in text and "[X] CUDA" in text
    assert "verdict: ready" in text and "warning" not in text
    assert facts.to_dict()["gpu"]["nccl_built"] is True
    assert facts.to_dict()["gpu"]["nccl_version"] == "2.30.7"


def test_a_cuda_build_on_eight_gpus_counts_them() -> None:
    facts = facts_with(CUDA_BUILD, *gpu_count(NVIDIA_SMI_8_A100, None))
    assert facts.gpu["summary"] == "NCCL built, 8 GPUs visible"
    narrowed = facts_with(CUDA_BUILD, *gpu_count(NVIDIA_SMI_8_A100, "0,1"))
    assert narrowed.gpu["summary"] == "NCCL built, 2 GPUs visible"
    assert "CUDA_VISIBLE_DEVICES=0,1" in narrowed.gpu["how"]


def test_a_cpu_build_on_a_gpu_machine_is_warned_about_but_usable() -> None:
    facts = facts_with(CPU_BUILD, *gpu_count(NVIDIA_SMI_8_A100, None))
    text = render(facts)
    assert "GPU:          CPU build (no NCCL), 8 GPUs visible" in text
    assert "warning: 8 GPU(s) visible but Horovod was built without NCCL" in text
    assert "make setup-gpu" in text
    assert facts.ok and "verdict: ready" in text
