"""Decide how Horovod is built in a venv, and the cache key its wheel is stored under.

Run by ``setup_env.sh`` as a plain script (standard library only, no hvdjob import), twice:

``build_plan.py choose``
    before the venv has frameworks: CUDA build or CPU build and why, and which frameworks.
``build_plan.py plan``
    with the venv's Python, after torch/TensorFlow are installed: prints one ``name value`` line per
    fact (``env`` lines are the build environment, ``key`` the cache key, ``wheel_dir`` where the
    wheel is or will be cached, ``action`` build or reuse, ``note`` lines for the log).

Every input that changes the binary goes into the key: Horovod, Python, torch and TensorFlow
versions, the build flags (frameworks, MPI, GPU operations, CUDA architectures), the C++ standard
the torch units are compiled with, the compiler, MPI, CUDA and NCCL versions, and the build scripts.
Everything is read from the environment and from tools found on ``PATH``, so tests can fake them.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # run as a script, before hvdjob is installed in the venv
from hvdrun_cli.smoke.box import count_smi_gpus  # noqa: E402  (stdlib only, like this file)
FRAMEWORKS = ("torch", "tensorflow")
DEFAULT_HOROVOD = "0.28.1"
# CUDA 13 dropped every architecture below 7.5; these cover Turing, Ampere and Hopper.
DEFAULT_CUDA_CC_LIST = "75,80,90"
# Scripts that act on the compile commands themselves: a change to any of them must change the key
# (build_plan.py acts only through the inputs it writes into the key).
KEYED_SCRIPTS = ("cxx_wrapper.sh",)
# What only C++20 has, as torch's own headers use it (torch 2.14: c10/util/intrusive_ptr.h includes
# <compare> and returns std::strong_ordering from operator<=>). Only torch's own header trees are read:
# bundled third-party headers (fmt, pybind11) test for C++20 features under #if and need nothing.
CXX20_MARKERS = re.compile(
    rb"#\s*include\s*<(compare|concepts)>|std::(strong|weak|partial)_ordering|operator\s*<=>"
)
TORCH_HEADER_TREES = ("c10", "ATen", "torch")


class PlanError(Exception):
    """A setting or a missing tool that makes the build impossible; one line for the user."""


def _run(argv: Sequence[str], timeout: float = 20) -> Optional[str]:
    try:
        out = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout + out.stderr if out.returncode == 0 else None


def first_line(argv: Sequence[str]) -> str:
    text = _run(argv)
    return text.strip().splitlines()[0].strip() if text and text.strip() else "none"


# --- frameworks -------------------------------------------------------------------------------
def frameworks(env: Dict[str, str]) -> Tuple[str, ...]:
    """HVDJOB_FRAMEWORKS as a checked tuple (default: both)."""
    raw = env.get("HVDJOB_FRAMEWORKS", "torch tensorflow")
    words = raw.replace(",", " ").split()
    unknown = [w for w in words if w not in FRAMEWORKS]
    if unknown or not words:
        raise PlanError(f"HVDJOB_FRAMEWORKS={raw!r}: use 'torch', 'tensorflow' or both (got {' '.join(unknown) or 'nothing'})")
    return tuple(fw for fw in FRAMEWORKS if fw in words)


# --- GPU detection ----------------------------------------------------------------------------
def find_nvcc(env: Dict[str, str]) -> Optional[Path]:
    """nvcc from HOROVOD_CUDA_HOME / CUDA_HOME, then PATH, then /usr/local/cuda."""
    for home in (env.get("HOROVOD_CUDA_HOME"), env.get("CUDA_HOME")):
        if home and (Path(home) / "bin" / "nvcc").is_file():
            return Path(home) / "bin" / "nvcc"
    found = shutil.which("nvcc", path=env.get("PATH"))
    if found:
        return Path(found)
    default = Path(env.get("HVDJOB_DEFAULT_CUDA_HOME", "/usr/local/cuda")) / "bin" / "nvcc"
    return default if default.is_file() else None


def cuda_home(nvcc: Path, env: Optional[Dict[str, str]] = None) -> Path:
    """The toolkit nvcc belongs to: its bin/.. when that holds CUDA's headers, else the default home
    (a /usr/local/bin/nvcc is often a one-line script that execs /usr/local/cuda-13.0/bin/nvcc)."""
    home = nvcc.resolve().parent.parent
    if (home / "include" / "cuda_runtime.h").is_file():
        return home
    default = Path((env or {}).get("HVDJOB_DEFAULT_CUDA_HOME", "/usr/local/cuda"))
    return default.resolve() if (default / "include" / "cuda_runtime.h").is_file() else home


def nvcc_version(nvcc: Path) -> Optional[str]:
    """``13.0`` from nvcc's ``Cuda compilation tools, release 13.0, V13.0.88``."""
    match = re.search(r"release (\d+\.\d+)", _run([str(nvcc), "--version"]) or "")
    return match.group(1) if match else None


def detect_gpu(env: Dict[str, str]) -> Tuple[bool, str]:
    """(CUDA build?, why). HVDJOB_GPU=1/0 forces it; otherwise a visible GPU and nvcc are needed.

    NCCL is not part of the decision: a CUDA torch brings it (the nvidia-nccl wheel), and setup
    installs that wheel for a CUDA build that has no system NCCL.
    """
    forced = env.get("HVDJOB_GPU", "")
    if forced not in ("", "0", "1"):
        raise PlanError(f"HVDJOB_GPU={forced!r}: use 1 (CUDA build), 0 (CPU build) or leave it unset (detect)")
    nvcc = find_nvcc(env)
    if forced == "1":
        if nvcc is None:
            raise PlanError("HVDJOB_GPU=1 but no nvcc found (set CUDA_HOME or put nvcc on PATH)")
        return True, f"HVDJOB_GPU=1 (nvcc {nvcc})"
    if forced == "0":
        return False, "HVDJOB_GPU=0"
    smi = shutil.which("nvidia-smi", path=env.get("PATH"))
    gpus = count_smi_gpus(_run([smi, "-L"]) or "") if smi else 0
    if not gpus:
        return False, "no NVIDIA GPU visible (nvidia-smi -L lists none)" if smi else "no GPU (no nvidia-smi)"
    if nvcc is None:
        return False, f"{gpus} GPU(s) visible but no nvcc (install the CUDA toolkit, or set CUDA_HOME)"
    return True, f"{gpus} GPU(s) visible, nvcc {nvcc}"


# --- NCCL -------------------------------------------------------------------------------------
def _site_dirs() -> List[Path]:
    return [Path(p) for p in sys.path if p and Path(p).is_dir()]


def find_nccl(env: Dict[str, str], cuda: Optional[Path]) -> Optional[Tuple[Path, Path]]:
    """(include dir, lib dir) of NCCL: HOROVOD_NCCL_HOME/NCCL_HOME, the venv's nvidia-nccl wheel, system."""
    homes: List[Path] = [Path(h) for h in (env.get("HOROVOD_NCCL_HOME"), env.get("NCCL_HOME")) if h]
    homes += [site / "nvidia" / "nccl" for site in _site_dirs()]
    homes += [Path("/usr/local"), Path("/usr")] + ([cuda] if cuda else [])
    for home in homes:
        include = home / "include"
        if not (include / "nccl.h").is_file():
            continue
        for lib in (home / "lib", home / "lib64", home / "lib" / "x86_64-linux-gnu"):
            if any(lib.glob("libnccl.so*")):
                return include, lib
    return None


def nccl_version(include: Path) -> str:
    text = (include / "nccl.h").read_text(errors="replace")
    parts = [re.search(rf"#define NCCL_{p}\s+(\d+)", text) for p in ("MAJOR", "MINOR", "PATCH")]
    return ".".join(m.group(1) for m in parts if m) or "unknown"


# --- torch's C++ standard ---------------------------------------------------------------------
def torch_include_dir() -> Optional[Path]:
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None
    include = Path(list(spec.submodule_search_locations)[0]) / "include"
    return include if include.is_dir() else None


def torch_cuda_version() -> Optional[str]:
    """``torch.version.cuda`` read from torch/version.py without importing torch (None: a CPU build)."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None
    version_py = Path(list(spec.submodule_search_locations)[0]) / "version.py"
    text = version_py.read_text() if version_py.is_file() else ""
    match = re.search(r"^cuda(?:\s*:[^=]*)?=\s*['\"]([^'\"]+)['\"]", text, re.MULTILINE)
    return match.group(1) if match else None


def headers_need_cxx20(include: Path) -> bool:
    """Whether any of torch's C++ headers uses a C++20-only library header or operator."""
    paths = (path for tree in TORCH_HEADER_TREES for path in (include / tree).rglob("*.h"))
    for path in paths:
        try:
            if CXX20_MARKERS.search(path.read_bytes()):
                return True
        except OSError:
            continue
    return False


def torch_cxx_standard(env: Dict[str, str], torch_version: Optional[str]) -> int:
    """The C++ standard Horovod's torch units are compiled with: 20 if torch's headers need it, else 17.

    HVDJOB_TORCH_CXX_STD overrides. Without headers to read, the torch version decides (2.14+: 20).
    """
    override = env.get("HVDJOB_TORCH_CXX_STD")
    if override:
        if override not in ("17", "20", "23"):
            raise PlanError(f"HVDJOB_TORCH_CXX_STD={override!r}: use 17, 20 or 23")
        return int(override)
    include = torch_include_dir()
    if include is not None:
        return 20 if headers_need_cxx20(include) else 17
    match = re.match(r"(\d+)\.(\d+)", torch_version or "")
    return 20 if match and (int(match.group(1)), int(match.group(2))) >= (2, 14) else 17


# --- the plan ---------------------------------------------------------------------------------
def package_version(name: str) -> Optional[str]:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def cache_root(env: Dict[str, str]) -> Path:
    if env.get("HVDJOB_CACHE"):
        return Path(env["HVDJOB_CACHE"])
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME", str(Path.home()))) / ".cache")
    return Path(base) / "hvdjob"


def source_patches() -> List[Path]:
    """The fixes applied to Horovod's source before a build, in order (see each file's header)."""
    return sorted((HERE / "patches").glob("*.patch"))


def script_digest(names: Iterable[str] = KEYED_SCRIPTS) -> str:
    """One digest of what changes the binary besides versions and flags: the wrapper and the patches."""
    digest = hashlib.sha256()
    for path in [HERE / name for name in names] + source_patches():
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def plan(env: Dict[str, str]) -> List[Tuple[str, str]]:
    """The build: ``(name, value)`` lines in the order setup_env.sh reads them."""
    chosen = frameworks(env)
    horovod = env.get("HOROVOD_VERSION", DEFAULT_HOROVOD)
    gpu = env.get("HVDJOB_GPU_BUILD", "0") == "1"
    torch_version = package_version("torch") if "torch" in chosen else None
    tf_version = package_version("tensorflow") if "tensorflow" in chosen else None
    for fw, version in (("torch", torch_version), ("tensorflow", tf_version)):
        if fw in chosen and version is None:
            raise PlanError(f"{fw} is not installed in {sys.executable}: install it first (or drop it from HVDJOB_FRAMEWORKS)")

    build_env = ["HOROVOD_WITHOUT_MXNET=1", "HOROVOD_WITH_GLOO=1"]
    build_env.append("HOROVOD_WITH_PYTORCH=1" if "torch" in chosen else "HOROVOD_WITHOUT_PYTORCH=1")
    build_env.append("HOROVOD_WITH_TENSORFLOW=1" if "tensorflow" in chosen else "HOROVOD_WITHOUT_TENSORFLOW=1")
    mpicxx = shutil.which("mpicxx", path=env.get("PATH"))
    use_mpi = bool(mpicxx) and env.get("HVDJOB_MPI", "auto") != "0"
    build_env.append("HOROVOD_WITH_MPI=1" if use_mpi else "HOROVOD_WITHOUT_MPI=1")
    notes: List[str] = []
    inputs = [f"horovod={horovod}", f"py{sys.version_info.major}.{sys.version_info.minor}",
              f"torch={torch_version or 'none'}", f"tf={tf_version or 'none'}"]

    cxx_std = torch_cxx_standard(env, torch_version) if torch_version else 17
    if torch_version:
        inputs.append(f"torch_cxx=c++{cxx_std}")
        notes.append(f"torch {torch_version}: its units are compiled as C++{cxx_std}")

    nccl_lines: List[Tuple[str, str]] = []
    torch_cuda = torch_cuda_version() if torch_version else None
    nvcc = find_nvcc(env)
    if gpu:
        if torch_cuda is None:
            raise PlanError(f"torch {torch_version} is a CPU build: a CUDA build of Horovod needs a CUDA torch "
                            "(PyPI's default Linux wheel; check TORCH_INDEX_URL)")
        if nvcc is None:
            raise PlanError("CUDA build requested but no nvcc found (set CUDA_HOME or put nvcc on PATH)")
        nccl = find_nccl(env, cuda_home(nvcc, env))
        if nccl is None:
            raise PlanError("CUDA build: NCCL not found (install the nvidia-nccl wheel or set NCCL_HOME)")
        include, lib = nccl
        build_env += ["HOROVOD_GPU_OPERATIONS=NCCL", "HOROVOD_NCCL_LINK=SHARED"]
        inputs.append(f"nccl={nccl_version(include)}")
        nccl_lines = [("nccl_include", str(include)), ("nccl_lib", str(lib))]
        notes.append(f"NCCL {nccl_version(include)} from {include.parent}")
    if torch_cuda and nvcc is not None:
        # Horovod's CMake compiles its CUDA units whenever torch is a CUDA build and it finds nvcc, also
        # without GPU operations: pin the toolkit and the architectures (CUDA 13 has none below 7.5).
        cc_list = env.get("HOROVOD_BUILD_CUDA_CC_LIST") or DEFAULT_CUDA_CC_LIST
        # CUDA_HOME too: torch's cpp_extension otherwise derives it from nvcc's place on PATH (a
        # /usr/local/bin/nvcc gives /usr/local) and Horovod then finds no libcudart to link.
        home = cuda_home(nvcc, env)
        build_env += [f"HOROVOD_CUDA_HOME={home}", f"CUDA_HOME={home}", f"HOROVOD_BUILD_CUDA_CC_LIST={cc_list}"]
        inputs += [f"torch_cuda={torch_cuda}", f"cuda={nvcc_version(nvcc) or 'unknown'}"]
        notes.append(f"CUDA {nvcc_version(nvcc)} from {cuda_home(nvcc, env)} (torch is a CUDA {torch_cuda} build): "
                     f"Horovod's CUDA units are compiled for compute capabilities {cc_list}")

    compiler = first_line([env.get("HVDJOB_REAL_CXX") or "c++", "--version"])
    mpi = first_line(["mpirun", "--version"]) if use_mpi and shutil.which("mpirun", path=env.get("PATH")) else "none"
    key_text = " ".join(inputs + build_env + [f"compiler={compiler}", f"mpi={mpi}", f"scripts={script_digest()}"])
    key = hashlib.sha256(key_text.encode()).hexdigest()[:16]
    flavour = "cuda" if gpu else "cpu"
    wheel_dir = cache_root(env) / "wheels" / f"horovod-{horovod}-{flavour}-{key}"
    action = "reuse" if any(wheel_dir.glob("horovod-*.whl")) else "build"
    lines = [("env", item) for item in build_env]
    lines += [("torch_cxx_std", str(cxx_std)), *nccl_lines, ("key", key), ("key_text", key_text),
              ("wheel_dir", str(wheel_dir)), ("action", action)]
    lines += [("note", note) for note in notes]
    return lines


def choose(env: Dict[str, str]) -> List[Tuple[str, str]]:
    """Before anything is installed: CUDA or CPU build, the frameworks, the CUDA major for NCCL's wheel."""
    gpu, why = detect_gpu(env)
    if gpu:
        explicit = env.get("HVDJOB_FRAMEWORKS")
        if explicit is not None and "tensorflow" in frameworks(env):
            raise PlanError(
                f"HVDJOB_FRAMEWORKS={explicit!r}: a CUDA build of Horovod {env.get('HOROVOD_VERSION', DEFAULT_HOROVOD)} "
                "covers PyTorch only here (see README: GPU machines); use HVDJOB_FRAMEWORKS=torch or HVDJOB_GPU=0"
            )
        chosen: Tuple[str, ...] = ("torch",)
    else:
        chosen = frameworks(env)
    lines = [("gpu", "1" if gpu else "0"), ("why", why), ("frameworks", " ".join(chosen))]
    if gpu:
        nvcc = find_nvcc(env)
        version = nvcc_version(nvcc) if nvcc else None
        lines.append(("cuda_major", version.split(".")[0] if version else "unknown"))
    return lines


def main(argv: Sequence[str]) -> int:
    env = dict(os.environ)
    steps = {"choose": choose, "plan": plan}
    if len(argv) != 2 or argv[1] not in steps:
        print("usage: build_plan.py choose|plan", file=sys.stderr)
        return 2
    try:
        lines = steps[argv[1]](env)
    except PlanError as exc:
        print(f"setup: {exc}", file=sys.stderr)
        return 2
    for name, value in lines:
        print(f"{name} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
