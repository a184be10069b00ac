"""Stand-ins for the tools and packages Horovod's build looks at, so the build scripts run in tests.

``hvdrun_cli/buildtools`` decides a build from what it finds: ``nvidia-smi``, ``nvcc``, ``c++``,
``mpicxx`` on PATH, and torch / TensorFlow / NCCL in the venv's ``sys.path``. These helpers make a
directory of fake tools and a fake site directory, so each decision can be driven and checked in
milliseconds without a compiler, a GPU or a framework.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterable, Optional

REPO = Path(__file__).resolve().parent.parent
BUILDTOOLS = REPO / "hvdrun_cli" / "buildtools"
PLAN = BUILDTOOLS / "build_plan.py"
WRAPPER = BUILDTOOLS / "cxx_wrapper.sh"
SETUP = BUILDTOOLS / "setup_env.sh"
PATCHES = BUILDTOOLS / "patches"  # fixes applied to Horovod's source before a build

# Recorded from a DGX-class machine (8 x A100) and a workstation; UUIDs shortened.
NVIDIA_SMI_8_A100 = "".join(
    f"GPU {i}: NVIDIA A100-SXM4-80GB (UUID: GPU-5d4c6e2a-{i:04d}-7f3b-9c1e-2b6d8a4f0e1{i})\n" for i in range(8)
)
NVIDIA_SMI_MIG = (
    "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-8b1a3c7e-52f4-4d9a-a6b0-3e2f1c9d7a55)\n"
    "  MIG 3g.40gb     Device  0: (UUID: MIG-0d5e6f7a-1b2c-5d3e-8f9a-0b1c2d3e4f5a)\n"
    "  MIG 3g.40gb     Device  1: (UUID: MIG-6a7b8c9d-0e1f-5a2b-9c3d-4e5f6a7b8c9d)\n"
)
NVCC_13 = (
    "nvcc: NVIDIA (R) Cuda compiler driver\nCopyright (c) 2005-2025 NVIDIA Corporation\n"
    "Built on Wed_Aug_20_01:58:59_PM_PDT_2025\nCuda compilation tools, release 13.0, V13.0.88\n"
    "Build cuda_13.0.r13.0/compiler.36424714_0\n"
)


def tool(bin_dir: Path, name: str, script: str) -> Path:
    """A shell script called ``name`` in ``bin_dir``."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return path


def printing_tool(bin_dir: Path, name: str, output: str, code: int = 0) -> Path:
    (bin_dir / f"{name}.out").parent.mkdir(parents=True, exist_ok=True)
    (bin_dir / f"{name}.out").write_text(output)
    return tool(bin_dir, name, f"/bin/cat '{bin_dir / (name + '.out')}'\nexit {code}\n")


def fake_cuda(root: Path, version_output: str = NVCC_13) -> Path:
    """A CUDA home with a ``bin/nvcc`` that answers ``--version``; returns the home."""
    printing_tool(root / "bin", "nvcc", version_output)
    (root / "include").mkdir(parents=True, exist_ok=True)
    (root / "include" / "cuda_runtime.h").write_text("#pragma once\n")
    return root


def fake_package(site: Path, name: str, version: str) -> Path:
    """A distribution ``name==version`` (dist-info + empty package) importable from ``site``."""
    dist = site / f"{name}-{version}.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    package = site / name
    package.mkdir(exist_ok=True)
    (package / "__init__.py").write_text(f"__version__ = {version!r}\n")
    return package


def fake_torch(site: Path, version: str, cxx20_headers: Optional[bool] = None, cuda: Optional[str] = None) -> Path:
    """torch ``version``; ``cxx20_headers`` True/False writes headers that do / do not need C++20."""
    package = fake_package(site, "torch", version)
    (package / "version.py").write_text(
        "from typing import Optional\n\n"
        f"__version__ = {version!r}\ndebug = False\ncuda: Optional[str] = {cuda!r}\n"
    )
    if cxx20_headers is not None:
        util = package / "include" / "c10" / "util"
        util.mkdir(parents=True, exist_ok=True)
        body = "#pragma once\n#include <atomic>\n"
        if cxx20_headers:
            body += "#include <compare>\ninline std::strong_ordering operator<=>(const A&, const A&);\n"
        (util / "intrusive_ptr.h").write_text(body)
        # A bundled third-party header that tests for C++20 under #if must not count.
        fmt = package / "include" / "fmt"
        fmt.mkdir(parents=True, exist_ok=True)
        (fmt / "std.h").write_text("#if __has_include(<compare>)\n#include <compare>\n#endif\n")
    return package


def fake_nccl(site: Path, version: str = "2.30.7", with_unversioned_so: bool = False) -> Path:
    """The nvidia-nccl wheel's layout: ``nvidia/nccl/include/nccl.h`` and ``lib/libnccl.so.2``."""
    home = site / "nvidia" / "nccl"
    (home / "include").mkdir(parents=True, exist_ok=True)
    (home / "lib").mkdir(parents=True, exist_ok=True)
    major, minor, patch = version.split(".")
    (home / "include" / "nccl.h").write_text(
        f"#define NCCL_MAJOR {major}\n#define NCCL_MINOR {minor}\n#define NCCL_PATCH {patch}\n"
    )
    (home / "lib" / "libnccl.so.2").write_text("not really a library\n")
    if with_unversioned_so:
        (home / "lib" / "libnccl.so").write_text("not really a library\n")
    return home


# The system tools the build scripts may use; nothing else of the machine (no real mpicxx, nvcc, c++).
SYSTEM_TOOLS = ("sh", "bash", "cat", "env", "grep", "awk", "head", "tail", "ls", "cp", "mv", "rm", "mkdir", "ln",
                "mktemp", "basename", "dirname", "sha256sum", "cut", "nproc", "tr", "sort", "touch", "id", "sed")


def system_bin(root: Path) -> Path:
    """A directory with links to SYSTEM_TOOLS only, to put on PATH after the fakes."""
    sysbin = root / "sysbin"
    if not sysbin.is_dir():
        sysbin.mkdir(parents=True)
        for name in SYSTEM_TOOLS:
            found = shutil.which(name, path="/usr/bin:/bin")
            if found:
                (sysbin / name).symlink_to(found)
    return sysbin


def base_env(bin_dir: Path, site: Optional[Path] = None, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """An environment that sees only the fake tools and a few basic system ones."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HOROVOD_", "HVDJOB_", "CUDA_", "NCCL_")) and k not in ("PYTHONPATH", "XDG_CACHE_HOME")}
    env["PATH"] = f"{bin_dir}:{system_bin(bin_dir.parent)}"
    env["HVDJOB_DEFAULT_CUDA_HOME"] = str(bin_dir.parent / "no-default-cuda")
    if site is not None:
        env["PYTHONPATH"] = str(site)
    env.update(extra or {})
    return env


def run_plan(step: str, env: Dict[str, str], plan_script: Path = PLAN) -> subprocess.CompletedProcess:
    """The plan script as setup_env.sh runs it, but with ``-S``: only the fake site dir's packages are seen."""
    return subprocess.run([sys.executable, "-S", str(plan_script), step], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def parse_lines(text: str) -> Dict[str, object]:
    """``name value`` lines into a dict; repeated names (``env``, ``note``) become lists."""
    found: Dict[str, object] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("env", "note"):
            found.setdefault(name, []).append(value)  # type: ignore[union-attr]
        else:
            found[name] = value
    return found


def without(env: Dict[str, str], names: Iterable[str]) -> Dict[str, str]:
    return {k: v for k, v in env.items() if k not in set(names)}
