"""setup_env.sh end to end, with a fake Python whose pip only records what it was asked to do.

The fake interpreter makes a "venv" (a copy of itself), logs every ``pip`` call (for ``pip wheel``
also the build environment, and it drops a wheel file where the real build would), and runs
build_plan.py with the real Python against a fake site dir. So these tests show what setup installs,
how it builds Horovod, and when it reuses the cached wheel, in a fraction of a second per run.
"""
from __future__ import annotations

import shutil
import tarfile
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import pytest

from tests.buildtools_fakes import (
    PATCHES, SETUP, WRAPPER, base_env, fake_cuda, fake_nccl, fake_package, fake_torch, printing_tool, tool,
)

FAKE_PYTHON = r"""#!/bin/bash
# A stand-in interpreter for setup_env.sh tests (see test_setup_env.py).
here="$(cd "$(dirname "$0")" && pwd)"
if [[ "$1" == -m && "$2" == venv ]]; then mkdir -p "$3/bin"; cp "$0" "$3/bin/python"; exit 0; fi
if [[ "$1" == -m && "$2" == pip ]]; then
  shift 2
  echo "pip $*" >>"$FAKE_LOG"
  if [[ "$1" == download ]]; then
    while (($#)); do [[ "$1" == -d ]] && mkdir -p "$2" && cp "$FAKE_SDIST" "$2/"; shift; done
  elif [[ "$1" == wheel ]]; then
    echo "build CXX=$CXX HVDJOB_TORCH_CXX_STD=$HVDJOB_TORCH_CXX_STD $(env | grep '^HOROVOD_' | sort | tr '\n' ' ')" >>"$FAKE_LOG"
    [[ -n "${HOROVOD_NCCL_LIB:-}" ]] && echo "nccl-lib $(ls "$HOROVOD_NCCL_LIB" | tr '\n' ' ')" >>"$FAKE_LOG"
    while (($#)); do [[ "$1" == -w ]] && touch "$2/horovod-0.28.1-cp311-cp311-linux_x86_64.whl"; shift; done
  elif [[ "$*" == *horovod-0.28.1-*.whl* ]]; then
    touch "$here/../horovod-installed"
  fi
  exit 0
fi
if [[ "$1" == -c ]]; then
  [[ -z "$2" ]] && exit 0  # "does this interpreter run?"
  [[ -f "$here/../horovod-installed" ]] || exit 1
  [[ "$2" == *print* ]] && echo "horovod 0.28.1"
  exit 0
fi
exec "$REAL_PYTHON" -S "$@"
"""


def fake_horovod_sdist(root: Path) -> Path:
    """Horovod's sdist reduced to the lines the patches change (their context, as released)."""
    tree = root / "sdist-src" / "horovod-0.28.1"
    for patch in sorted(PATCHES.glob("*.patch")):
        lines = patch.read_text().splitlines()
        target = next(l[len("--- a/"):] for l in lines if l.startswith("--- a/"))
        start = next(i for i, l in enumerate(lines) if l.startswith("@@"))
        original = [l[1:] for l in lines[start + 1:] if l[:1] in (" ", "-")]
        path = tree / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(original) + "\n")
    archive = root / "horovod-0.28.1.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tree, arcname="horovod-0.28.1")
    return archive


class Setup:
    """A fake machine to run setup_env.sh on."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = root / "bin"
        self.site = root / "site"
        self.cache = root / "cache"
        self.log = root / "pip.log"
        self.site.mkdir()
        self.bin.mkdir()
        self.python = self.bin / "python3"
        self.python.write_text(FAKE_PYTHON)
        self.python.chmod(0o755)
        printing_tool(self.bin, "c++", "c++ (Debian 12.2.0-14+deb12u1) 12.2.0\n")
        printing_tool(self.bin, "cmake", "cmake version 3.25.1\n")
        fake_torch(self.site, "2.13.0+cpu", cxx20_headers=False)
        fake_package(self.site, "tensorflow", "2.21.0")
        self.sdist = fake_horovod_sdist(root)
        for real in ("tar", "gzip", "patch"):  # unpacking and patching the source are real
            (self.bin / real).symlink_to(shutil.which(real))

    def run(self, venv: str = "venv", **settings: str) -> subprocess.CompletedProcess:
        env = base_env(self.bin, self.site, {
            "VENV": str(self.root / venv), "PYTHON": str(self.python), "HVDJOB_CACHE": str(self.cache),
            "FAKE_LOG": str(self.log), "REAL_PYTHON": sys.executable, "FAKE_SDIST": str(self.sdist), **settings,
        })
        self.log.write_text("")
        return subprocess.run(["bash", str(SETUP)], env=env, capture_output=True, text=True, timeout=120, check=False)

    def pip_calls(self) -> List[str]:
        return [line for line in self.log.read_text().splitlines() if line.startswith("pip ")]

    def build(self) -> Optional[str]:
        builds = [line for line in self.log.read_text().splitlines() if line.startswith("build ")]
        assert len(builds) <= 1
        return builds[0] if builds else None

    def installed(self, requirement: str) -> bool:
        return any(call.startswith("pip install") and f" {requirement}" in f"{call} " for call in self.pip_calls())


@pytest.fixture
def box(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


def test_default_setup_installs_both_frameworks_and_builds_one_wheel(box: Setup) -> None:
    done = box.run()
    assert done.returncode == 0, done.stderr
    assert "applying 0001-gloo-process-set-uses-the-job-interface.patch" in done.stdout
    assert any(c.startswith("pip wheel") and "/horovod-0.28.1 " in c + " " for c in box.pip_calls()), box.pip_calls()
    assert box.installed("torch==2.13.0")
    assert box.installed("tensorflow==2.21.0") and box.installed("tf-keras~=2.21.0")
    build = box.build()
    assert build is not None
    assert f"CXX={WRAPPER} HVDJOB_TORCH_CXX_STD=17 " in build
    assert "HOROVOD_WITH_PYTORCH=1" in build and "HOROVOD_WITH_TENSORFLOW=1" in build
    assert "HOROVOD_GPU_OPERATIONS" not in build
    (wheel_dir,) = (box.cache / "wheels").iterdir()
    assert wheel_dir.name.startswith("horovod-0.28.1-cpu-")
    assert list(wheel_dir.glob("horovod-0.28.1-*.whl"))
    assert "torch=2.13.0+cpu tf=2.21.0" in (wheel_dir / "KEY.txt").read_text()
    assert "setup: done in" in done.stdout and "horovod 0.28.1" in done.stdout


def test_torch_version_picks_the_release_and_its_cxx_standard(box: Setup) -> None:
    fake_torch(box.site, "2.14.1", cxx20_headers=True)  # what pip would have installed
    shutil.rmtree(box.site / "torch-2.13.0+cpu.dist-info")
    done = box.run(TORCH_VERSION="2.14.1")
    assert done.returncode == 0, done.stderr
    assert box.installed("torch==2.14.1") and not box.installed("torch==2.13.0")
    assert "HVDJOB_TORCH_CXX_STD=20 " in str(box.build())
    assert "torch 2.14.1: its units are compiled as C++20" in done.stdout


def test_frameworks_narrow_what_is_installed_and_built(box: Setup) -> None:
    done = box.run(HVDJOB_FRAMEWORKS="torch")
    assert done.returncode == 0, done.stderr
    assert not any("tensorflow" in call for call in box.pip_calls())
    assert "HOROVOD_WITHOUT_TENSORFLOW=1" in str(box.build())


def test_a_second_setup_reuses_the_cached_wheel(box: Setup) -> None:
    assert box.run(venv="first").returncode == 0
    assert box.build() is not None
    again = box.run(venv="second")
    assert again.returncode == 0, again.stderr
    assert box.build() is None, "the second venv must not build again"
    assert "reusing cached horovod wheel" in again.stdout
    assert any("--force-reinstall" in call and "horovod-0.28.1-" in call for call in box.pip_calls())
    third = box.run(venv="second")
    assert "already installed for this build key" in third.stdout
    assert not any("horovod-0.28.1-" in call for call in box.pip_calls())


def test_a_changed_input_builds_again_under_a_new_key(box: Setup) -> None:
    assert box.run().returncode == 0
    assert box.run(HVDJOB_FRAMEWORKS="torch").returncode == 0
    assert box.build() is not None
    assert len(list((box.cache / "wheels").iterdir())) == 2


def test_cuda_build_installs_nccl_and_links_libnccl_so_for_the_linker(box: Setup) -> None:
    shutil.rmtree(box.site / "torch")
    fake_torch(box.site, "2.14.1", cxx20_headers=True, cuda="13.0")
    nccl = fake_nccl(box.site)  # only libnccl.so.2, as in the wheel
    cuda = fake_cuda(box.root / "cuda")
    done = box.run(HVDJOB_GPU="1", CUDA_HOME=str(cuda), TORCH_VERSION="2.14.1")
    assert done.returncode == 0, done.stderr
    assert "build type: CUDA (NCCL GPU operations)" in done.stdout
    assert box.installed("nvidia-nccl-cu13")
    assert not any("tensorflow" in call for call in box.pip_calls())
    build = str(box.build())
    assert "HOROVOD_GPU_OPERATIONS=NCCL" in build and "HOROVOD_BUILD_CUDA_CC_LIST=75,80,90" in build
    assert f"HOROVOD_NCCL_INCLUDE={nccl / 'include'}" in build
    assert "HVDJOB_TORCH_CXX_STD=20" in build
    assert "nccl-lib libnccl.so libnccl.so.2" in box.log.read_text()
    assert not (nccl / "lib" / "libnccl.so").exists(), "the installed NCCL wheel must not be modified"
    (wheel_dir,) = (box.cache / "wheels").iterdir()
    assert wheel_dir.name.startswith("horovod-0.28.1-cuda-")


def test_a_missing_interpreter_is_named(box: Setup) -> None:
    done = box.run(PYTHON="python9.9")
    assert done.returncode == 2
    assert done.stderr.strip() == "setup: PYTHON=python9.9: no such interpreter on PATH"


def test_a_bad_setting_stops_before_anything_is_installed(box: Setup) -> None:
    done = box.run(HVDJOB_FRAMEWORKS="mxnet")
    assert done.returncode == 2
    assert "HVDJOB_FRAMEWORKS='mxnet'" in done.stderr
    assert box.pip_calls() == [] and not (box.root / "venv").exists()


def test_a_pyenv_version_that_is_not_selected_is_found(box: Setup) -> None:
    # pyenv's shim answers "command not found" for an installed but unselected python3.12.
    tool(box.bin, "python3.12", "echo 'pyenv: python3.12: command not found' >&2\nexit 127\n")
    root = box.root / "pyenv"
    interpreter = root / "versions" / "3.12.1" / "bin" / "python3.12"
    interpreter.parent.mkdir(parents=True)
    interpreter.write_text(FAKE_PYTHON)
    interpreter.chmod(0o755)
    tool(box.bin, "pyenv", f"[ \"$1\" = root ] && echo '{root}'\n")
    done = box.run(PYTHON="python3.12")
    assert done.returncode == 0, done.stderr
    assert (box.root / "venv" / "bin" / "python").read_text() == FAKE_PYTHON
