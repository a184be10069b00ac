"""The compiler wrapper Horovod is built with: which C++ standard each unit gets, and the XLA stub.

A fake compiler on HVDJOB_REAL_CXX records the arguments it receives, so each test shows exactly
what the real compiler would have been asked to do.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from tests.buildtools_fakes import WRAPPER, tool

TORCH_UNIT = ["-DPYTORCH_VERSION=2014001000", "-DTORCH_API_INCLUDE_EXTENSION_H=1", "-std=c++14",
              "-c", "horovod/torch/ready_event.cc", "-o", "ready_event.cc.o"]
COMMON_UNIT = ["-DHAVE_GLOO=1", "-std=c++14", "-c", "horovod/common/operations.cc", "-o", "operations.cc.o"]
TF_UNIT = ["-DTENSORFLOW_VERSION=2021000000", "-std=c++14", "--std=c++17", "-c", "horovod/tensorflow/mpi_ops.cc"]
XLA_UNIT = ["-DTENSORFLOW_VERSION=2021000000", "-std=c++14", "-c", "horovod/tensorflow/xla_mpi_ops.cc"]


def compile_with(tmp_path: Path, args: List[str], torch_std: Optional[str] = None) -> List[str]:
    """The argv the real compiler gets when the wrapper is called with ``args``."""
    record = tmp_path / "argv.txt"
    fake = tool(tmp_path / "bin", "fake-c++", f"for a in \"$@\"; do echo \"$a\"; done > '{record}'\n")
    env: Dict[str, str] = {k: v for k, v in os.environ.items() if not k.startswith("HVDJOB_")}
    env["HVDJOB_REAL_CXX"] = str(fake)
    if torch_std is not None:
        env["HVDJOB_TORCH_CXX_STD"] = torch_std
    done = subprocess.run(["bash", str(WRAPPER), *args], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return record.read_text().splitlines()


def test_torch_units_get_the_standard_torchs_headers_need(tmp_path: Path) -> None:
    argv = compile_with(tmp_path, TORCH_UNIT, torch_std="20")
    assert "-std=c++20" in argv
    assert "-std=c++14" not in argv and "-std=c++17" not in argv
    assert argv[-4:] == ["-c", "horovod/torch/ready_event.cc", "-o", "ready_event.cc.o"]


def test_torch_units_default_to_cxx17(tmp_path: Path) -> None:
    assert "-std=c++17" in compile_with(tmp_path, TORCH_UNIT)


def test_an_explicit_cxx17_in_a_torch_unit_is_lifted_too(tmp_path: Path) -> None:
    args = ["-DPYTORCH_VERSION=2014001000", "-std=gnu++17", "-c", "horovod/torch/mpi_ops_v2.cc"]
    argv = compile_with(tmp_path, args, torch_std="20")
    assert "-std=gnu++20" in argv and "-std=gnu++17" not in argv


@pytest.mark.parametrize("std", ["17", "20"])
def test_units_outside_torch_are_lifted_to_cxx17_only(tmp_path: Path, std: str) -> None:
    argv = compile_with(tmp_path, COMMON_UNIT, torch_std=std)
    assert "-std=c++17" in argv and "-std=c++14" not in argv and "-std=c++20" not in argv


def test_tensorflow_units_keep_their_version_and_get_cxx17(tmp_path: Path) -> None:
    argv = compile_with(tmp_path, TF_UNIT, torch_std="20")
    assert "-DTENSORFLOW_VERSION=2021000000" in argv
    assert "-std=c++17" in argv and "-std=c++20" not in argv
    assert "--std=c++17" in argv  # TensorFlow's own flag passes through untouched


def test_the_xla_unit_is_compiled_as_an_empty_unit(tmp_path: Path) -> None:
    argv = compile_with(tmp_path, XLA_UNIT)
    assert "-DTENSORFLOW_VERSION=2021000000" not in argv
    assert argv[-1] == "-DTENSORFLOW_VERSION=0"
    assert "horovod/tensorflow/xla_mpi_ops.cc" in argv


def test_arguments_with_spaces_reach_the_compiler_intact(tmp_path: Path) -> None:
    argv = compile_with(tmp_path, ["-I/opt/my include", "-std=c++14", "-c", "a b.cc"])
    assert argv == ["-I/opt/my include", "-std=c++17", "-c", "a b.cc"]


def test_the_compilers_exit_code_is_passed_on(tmp_path: Path) -> None:
    failing = tool(tmp_path / "bin", "failing-c++", "echo 'error: strong_ordering' >&2\nexit 7\n")
    env = dict(os.environ, HVDJOB_REAL_CXX=str(failing))
    done = subprocess.run(["bash", str(WRAPPER), "-c", "x.cc"], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 7
    assert "strong_ordering" in done.stderr
