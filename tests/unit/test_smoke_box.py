"""Sizing a smoke run for this machine: GPUs from ``nvidia-smi -L`` and ``CUDA_VISIBLE_DEVICES``."""
from __future__ import annotations

import pytest

from hvdrun_cli.smoke.box import box_shape, count_visible_devices, gpu_count

SMI_TWO = """\
GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-1d2c3b4a-0000-0000-0000-000000000000)
GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-5e6f7a8b-0000-0000-0000-000000000000)
  MIG 3g.20gb     Device  0: (UUID: MIG-11111111-0000-0000-0000-000000000000)
"""


def test_no_gpu_means_two_cpu_ranks():
    count, reason = gpu_count(None, None)
    assert count == 0 and "nvidia-smi unavailable" in reason
    shape = box_shape(count, reason)
    assert (shape.np, shape.gpus_per_rank, shape.device) == (2, 0, "cpu")
    assert shape.describe() == "2 CPU ranks over Gloo (no GPU: nvidia-smi unavailable)"


def test_one_rank_per_listed_gpu():
    count, reason = gpu_count(SMI_TWO, None)
    assert count == 2 and reason == "2 GPUs listed by nvidia-smi -L"
    shape = box_shape(count, reason)
    assert (shape.np, shape.gpus_per_rank, shape.device) == (2, 1, "gpu")


@pytest.mark.parametrize("visible, expected", [("0", 1), ("1,0", 2), ("0,1,2,3", 2), ("", 0), ("-1", 0)])
def test_cuda_visible_devices_narrows_what_nvidia_smi_lists(visible, expected):
    assert gpu_count(SMI_TWO, visible)[0] == expected


def test_cuda_visible_devices_counts_until_the_first_invalid_entry():
    assert count_visible_devices("0,1,-1,2") == 2
    assert count_visible_devices("GPU-1d2c3b4a,GPU-5e6f7a8b") == 2


def test_cuda_visible_devices_alone_when_nvidia_smi_is_missing():
    assert gpu_count(None, "0,1")[0] == 2
    assert gpu_count(None, "")[0] == 0


def test_np_flag_replaces_the_default():
    assert box_shape(0, "no GPU", np=3).np == 3
    gpu = box_shape(4, "4 GPUs", np=2)
    assert (gpu.np, gpu.gpus_per_rank) == (2, 1) and gpu.reason == "--np 2; 4 GPUs"
