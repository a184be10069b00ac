"""Reading what Horovod was built with from its compiled library, without importing it."""
from __future__ import annotations

from pathlib import Path

import pytest

from hvdrun_cli.launch import tools


def _fake_horovod(root: Path, content: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    lib = root / "horovod" / "torch" / "mpi_lib_v2.cpython-311-x86_64-linux-gnu.so"
    lib.parent.mkdir(parents=True)
    lib.write_bytes(b"\x7fELF" + b"\0" * 4096 + content + b"\0" * 4096)
    monkeypatch.setattr(tools, "horovod_extension", lambda: lib)


def test_an_nccl_build_is_told_from_a_cpu_build_by_the_library_it_calls(tmp_path: Path, monkeypatch) -> None:
    _fake_horovod(tmp_path, b"libmpi.so.40\0ncclAllReduce\0libnccl.so.2\0", monkeypatch)
    assert tools.horovod_built_with_nccl() is True and tools.horovod_built_with_mpi() is True


def test_a_cpu_build_without_mpi_says_so(tmp_path: Path, monkeypatch) -> None:
    _fake_horovod(tmp_path, b"libgloo\0", monkeypatch)
    assert tools.horovod_built_with_nccl() is False and tools.horovod_built_with_mpi() is False


def test_without_horovod_nothing_is_known(monkeypatch) -> None:
    monkeypatch.setattr(tools, "horovod_extension", lambda: None)
    assert tools.horovod_built_with_nccl() is None and tools.horovod_built_with_mpi() is None


def test_the_installed_build_is_found_and_read() -> None:
    lib = tools.horovod_extension()  # the test venv's Horovod is built with MPI (make setup)
    assert lib is not None and lib.name.startswith("mpi_lib") and tools.horovod_built_with_mpi() is True
