"""build_plan.py, run as setup_env.sh runs it, against fake tools and fake installed packages.

It decides CUDA or CPU build, the frameworks, the C++ standard of the torch units, the build flags
and the wheel cache key. These tests drive each input and check what a user would see: the build
flags, whether the cached wheel is reused, where it is cached, and a one-line error for bad settings.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Dict, Optional

import pytest

from tests.buildtools_fakes import (
    NVIDIA_SMI_8_A100, NVIDIA_SMI_MIG, REPO, base_env, fake_cuda, fake_nccl, fake_package, fake_torch,
    parse_lines, printing_tool, run_plan, tool,
)


class Box:
    """A fake machine: a bin dir of tools and a site dir of installed packages."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = root / "bin"
        self.site = root / "site"
        self.bin.mkdir()
        self.site.mkdir()
        self.cache = root / "cache"
        printing_tool(self.bin, "c++", "c++ (Debian 12.2.0-14+deb12u1) 12.2.0\n")

    def env(self, **extra: str) -> Dict[str, str]:
        return base_env(self.bin, self.site, {"HVDJOB_CACHE": str(self.cache), **extra})

    def plan(self, **extra: str) -> Dict[str, object]:
        done = run_plan("plan", self.env(**extra))
        assert done.returncode == 0, done.stderr
        return parse_lines(done.stdout)

    def choose(self, **extra: str) -> Dict[str, object]:
        done = run_plan("choose", self.env(**extra))
        assert done.returncode == 0, done.stderr
        return parse_lines(done.stdout)


@pytest.fixture
def box(tmp_path: Path) -> Box:
    return Box(tmp_path)


def _both(box: Box, torch: str = "2.13.0+cpu", cxx20: Optional[bool] = False, tf: str = "2.21.0") -> None:
    fake_torch(box.site, torch, cxx20_headers=cxx20)
    fake_package(box.site, "tensorflow", tf)


# --- GPU detection ----------------------------------------------------------------------------
def test_no_nvidia_smi_means_a_cpu_build_with_both_frameworks(box: Box) -> None:
    chosen = box.choose()
    assert chosen["gpu"] == "0"
    assert chosen["frameworks"] == "torch tensorflow"
    assert "no nvidia-smi" in str(chosen["why"])


def test_visible_gpus_and_nvcc_mean_a_cuda_build_of_pytorch(box: Box) -> None:
    printing_tool(box.bin, "nvidia-smi", NVIDIA_SMI_8_A100)
    fake_cuda(box.root / "cuda")
    chosen = box.choose(CUDA_HOME=str(box.root / "cuda"))
    assert chosen["gpu"] == "1"
    assert chosen["why"] == f"8 GPU(s) visible, nvcc {box.root / 'cuda' / 'bin' / 'nvcc'}"
    assert chosen["frameworks"] == "torch"
    assert chosen["cuda_major"] == "13"


def test_mig_devices_count_as_their_gpu(box: Box) -> None:
    printing_tool(box.bin, "nvidia-smi", NVIDIA_SMI_MIG)
    fake_cuda(box.root / "cuda")
    assert box.choose(CUDA_HOME=str(box.root / "cuda"))["why"].startswith("1 GPU(s) visible")  # type: ignore[union-attr]


def test_nvcc_is_found_on_path_too(box: Box) -> None:
    printing_tool(box.bin, "nvidia-smi", NVIDIA_SMI_8_A100)
    fake_cuda(box.root / "cuda")
    (box.bin / "nvcc").symlink_to(box.root / "cuda" / "bin" / "nvcc")
    assert box.choose()["gpu"] == "1"


def test_gpus_without_nvcc_fall_back_to_cpu_and_say_why(box: Box) -> None:
    printing_tool(box.bin, "nvidia-smi", NVIDIA_SMI_8_A100)
    chosen = box.choose()
    assert chosen["gpu"] == "0"
    assert chosen["why"] == "8 GPU(s) visible but no nvcc (install the CUDA toolkit, or set CUDA_HOME)"


def test_nvidia_smi_without_a_working_driver_is_no_gpu(box: Box) -> None:
    printing_tool(box.bin, "nvidia-smi", "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n",
                  code=9)
    fake_cuda(box.root / "cuda")
    chosen = box.choose(CUDA_HOME=str(box.root / "cuda"))
    assert chosen["gpu"] == "0"
    assert "nvidia-smi -L lists none" in str(chosen["why"])


def test_hvdjob_gpu_forces_either_way(box: Box) -> None:
    printing_tool(box.bin, "nvidia-smi", NVIDIA_SMI_8_A100)
    fake_cuda(box.root / "cuda")
    assert box.choose(CUDA_HOME=str(box.root / "cuda"), HVDJOB_GPU="0")["gpu"] == "0"
    (box.bin / "nvidia-smi").unlink()
    assert box.choose(CUDA_HOME=str(box.root / "cuda"), HVDJOB_GPU="1")["gpu"] == "1"  # no GPU here: compile only


@pytest.mark.parametrize("settings, message", [
    ({"HVDJOB_GPU": "yes"}, "HVDJOB_GPU='yes': use 1 (CUDA build), 0 (CPU build) or leave it unset"),
    ({"HVDJOB_GPU": "1"}, "HVDJOB_GPU=1 but no nvcc found"),
    ({"HVDJOB_FRAMEWORKS": "pytorch"}, "HVDJOB_FRAMEWORKS='pytorch': use 'torch', 'tensorflow' or both (got pytorch)"),
    ({"HVDJOB_FRAMEWORKS": " "}, "HVDJOB_FRAMEWORKS=' ': use 'torch', 'tensorflow' or both (got nothing)"),
])
def test_bad_settings_fail_with_one_line(box: Box, settings: Dict[str, str], message: str) -> None:
    done = run_plan("choose", box.env(**settings))
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"setup: {message}")


def test_a_cuda_build_refuses_tensorflow_by_name(box: Box) -> None:
    fake_cuda(box.root / "cuda")
    done = run_plan("choose", box.env(CUDA_HOME=str(box.root / "cuda"), HVDJOB_GPU="1",
                                      HVDJOB_FRAMEWORKS="torch tensorflow"))
    assert done.returncode == 2
    assert "covers PyTorch only here" in done.stderr and "HVDJOB_FRAMEWORKS=torch" in done.stderr


def test_frameworks_can_be_narrowed(box: Box) -> None:
    assert box.choose(HVDJOB_FRAMEWORKS="tensorflow")["frameworks"] == "tensorflow"
    assert box.choose(HVDJOB_FRAMEWORKS="torch,tensorflow")["frameworks"] == "torch tensorflow"


# --- C++ standard of the torch units ------------------------------------------------------------
def test_torch_whose_headers_need_cxx20_gets_cxx20(box: Box) -> None:
    _both(box, torch="2.14.1", cxx20=True)
    plan = box.plan(HVDJOB_FRAMEWORKS="torch tensorflow")
    assert plan["torch_cxx_std"] == "20"
    assert "torch_cxx=c++20" in str(plan["key_text"])
    assert "torch 2.14.1: its units are compiled as C++20" in plan["note"]  # type: ignore[operator]


def test_torch_2_13_headers_keep_cxx17(box: Box) -> None:
    _both(box, torch="2.13.0+cpu", cxx20=False)
    assert box.plan()["torch_cxx_std"] == "17"


def test_without_headers_to_read_the_torch_version_decides(box: Box) -> None:
    _both(box, torch="2.15.0", cxx20=None)
    assert box.plan()["torch_cxx_std"] == "20"
    shutil.rmtree(box.site)
    box.site.mkdir()
    _both(box, torch="2.13.0", cxx20=None)
    assert box.plan()["torch_cxx_std"] == "17"


def test_the_standard_can_be_forced(box: Box) -> None:
    _both(box, torch="2.13.0+cpu", cxx20=False)
    assert box.plan(HVDJOB_TORCH_CXX_STD="20")["torch_cxx_std"] == "20"
    done = run_plan("plan", box.env(HVDJOB_TORCH_CXX_STD="14"))
    assert done.returncode == 2 and "HVDJOB_TORCH_CXX_STD='14': use 17, 20 or 23" in done.stderr


# --- build flags --------------------------------------------------------------------------------
def test_cpu_build_flags_follow_frameworks_and_mpi(box: Box) -> None:
    _both(box)
    assert box.plan()["env"] == ["HOROVOD_WITHOUT_MXNET=1", "HOROVOD_WITH_GLOO=1", "HOROVOD_WITH_PYTORCH=1",
                                 "HOROVOD_WITH_TENSORFLOW=1", "HOROVOD_WITHOUT_MPI=1"]
    tool(box.bin, "mpicxx", "exit 0\n")
    printing_tool(box.bin, "mpirun", "mpirun (Open MPI) 4.1.4\n")
    plan = box.plan(HVDJOB_FRAMEWORKS="torch")
    assert "HOROVOD_WITH_MPI=1" in plan["env"] and "HOROVOD_WITHOUT_TENSORFLOW=1" in plan["env"]  # type: ignore[operator]
    assert "mpi=mpirun (Open MPI) 4.1.4" in str(plan["key_text"])


def test_a_missing_framework_is_named(box: Box) -> None:
    fake_torch(box.site, "2.13.0+cpu", cxx20_headers=False)
    done = run_plan("plan", box.env())
    assert done.returncode == 2
    assert "tensorflow is not installed in" in done.stderr and "HVDJOB_FRAMEWORKS" in done.stderr


def _gpu_box(box: Box, torch_cuda: Optional[str] = "13.0") -> Dict[str, str]:
    fake_torch(box.site, "2.14.1", cxx20_headers=True, cuda=torch_cuda)
    fake_nccl(box.site)
    fake_cuda(box.root / "cuda")
    return {"HVDJOB_GPU_BUILD": "1", "HVDJOB_FRAMEWORKS": "torch", "CUDA_HOME": str(box.root / "cuda")}


def test_cuda_build_flags_name_cuda_nccl_and_the_architectures(box: Box) -> None:
    plan = box.plan(**_gpu_box(box))
    env = plan["env"]
    assert "HOROVOD_GPU_OPERATIONS=NCCL" in env  # type: ignore[operator]
    assert f"HOROVOD_CUDA_HOME={(box.root / 'cuda').resolve()}" in env  # type: ignore[operator]
    assert "HOROVOD_BUILD_CUDA_CC_LIST=75,80,90" in env  # type: ignore[operator]
    assert "HOROVOD_NCCL_LINK=SHARED" in env  # type: ignore[operator]
    assert plan["nccl_include"] == str(box.site / "nvidia" / "nccl" / "include")
    assert plan["nccl_lib"] == str(box.site / "nvidia" / "nccl" / "lib")
    for fact in ("cuda=13.0", "nccl=2.30.7", "torch_cuda=13.0", "HOROVOD_WITHOUT_TENSORFLOW=1"):
        assert fact in str(plan["key_text"])
    assert Path(str(plan["wheel_dir"])).name.startswith("horovod-0.28.1-cuda-")


def test_cuda_architectures_can_be_chosen(box: Box) -> None:
    plan = box.plan(**_gpu_box(box), HOROVOD_BUILD_CUDA_CC_LIST="90")
    assert "HOROVOD_BUILD_CUDA_CC_LIST=90" in plan["env"]  # type: ignore[operator]


def test_a_cuda_build_needs_a_cuda_torch_and_nccl(box: Box) -> None:
    settings = _gpu_box(box, torch_cuda=None)
    done = run_plan("plan", box.env(**settings))
    assert done.returncode == 2 and "torch 2.14.1 is a CPU build" in done.stderr
    shutil.rmtree(box.site / "torch")
    fake_torch(box.site, "2.14.1", cxx20_headers=True, cuda="13.0")
    shutil.rmtree(box.site / "nvidia")
    done = run_plan("plan", box.env(**settings))
    assert done.returncode == 2 and "NCCL not found" in done.stderr


# --- the cache key and the cache ----------------------------------------------------------------
def _key(box: Box, **extra: str) -> str:
    return str(box.plan(**extra)["key"])


def test_the_key_is_stable_for_the_same_inputs(box: Box) -> None:
    _both(box)
    assert _key(box) == _key(box)


@pytest.mark.parametrize("change", ["torch", "tensorflow", "frameworks", "compiler", "mpi", "cxx_std"])
def test_every_input_that_changes_the_binary_changes_the_key(box: Box, change: str) -> None:
    _both(box)
    before = _key(box)
    extra: Dict[str, str] = {}
    if change == "torch":
        shutil.rmtree(box.site / "torch")
        for dist in box.site.glob("torch-*.dist-info"):
            shutil.rmtree(dist)
        fake_torch(box.site, "2.14.1", cxx20_headers=False)
    elif change == "tensorflow":
        for dist in box.site.glob("tensorflow-*.dist-info"):
            shutil.rmtree(dist)
        fake_package(box.site, "tensorflow", "2.20.0")
    elif change == "frameworks":
        extra["HVDJOB_FRAMEWORKS"] = "torch"
    elif change == "compiler":
        printing_tool(box.bin, "c++", "c++ (Debian 14.2.0-19) 14.2.0\n")
    elif change == "mpi":
        tool(box.bin, "mpicxx", "exit 0\n")
        printing_tool(box.bin, "mpirun", "mpirun (Open MPI) 4.1.4\n")
    elif change == "cxx_std":
        extra["HVDJOB_TORCH_CXX_STD"] = "20"
    assert _key(box, **extra) != before


def test_a_change_to_the_compiler_wrapper_changes_the_key(box: Box, tmp_path: Path) -> None:
    _both(box)
    copy = tmp_path / "copy"
    shutil.copytree(REPO / "hvdrun_cli", copy / "hvdrun_cli", ignore=shutil.ignore_patterns("__pycache__", "adapters"))
    script = copy / "hvdrun_cli" / "buildtools" / "build_plan.py"
    first = parse_lines(run_plan("plan", box.env(), plan_script=script).stdout)["key"]
    wrapper = copy / "hvdrun_cli" / "buildtools" / "cxx_wrapper.sh"
    wrapper.write_text(wrapper.read_text() + "# changed\n")
    second = parse_lines(run_plan("plan", box.env(), plan_script=script).stdout)["key"]
    assert first == _key(box) and second != first


def test_a_cached_wheel_is_reused(box: Box) -> None:
    _both(box)
    plan = box.plan()
    assert plan["action"] == "build"
    wheel_dir = Path(str(plan["wheel_dir"]))
    wheel_dir.mkdir(parents=True)
    (wheel_dir / "horovod-0.28.1-cp311-cp311-linux_x86_64.whl").write_bytes(b"PK")
    again = box.plan()
    assert again["action"] == "reuse" and again["wheel_dir"] == plan["wheel_dir"]
    assert box.plan(HVDJOB_FRAMEWORKS="torch")["action"] == "build"  # another build: another key


def test_hvdjob_cache_moves_the_cache(box: Box, tmp_path: Path) -> None:
    _both(box)
    assert Path(str(box.plan()["wheel_dir"])).parent == box.cache / "wheels"
    other = tmp_path / "ci-cache"
    assert Path(str(box.plan(HVDJOB_CACHE=str(other))["wheel_dir"])).parent == other / "wheels"


def test_the_default_cache_is_under_xdg_cache_home_or_home(box: Box, tmp_path: Path) -> None:
    _both(box)
    env = box.env()
    del env["HVDJOB_CACHE"]
    env["HOME"] = str(tmp_path / "home")
    plan = parse_lines(run_plan("plan", env).stdout)
    assert Path(str(plan["wheel_dir"])).parent == tmp_path / "home" / ".cache" / "hvdjob" / "wheels"
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    plan = parse_lines(run_plan("plan", env).stdout)
    assert Path(str(plan["wheel_dir"])).parent == tmp_path / "xdg" / "hvdjob" / "wheels"

