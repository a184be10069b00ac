#!/usr/bin/env bash
# Create the virtual environment with PyTorch, TensorFlow (+ tf-keras) and a Horovod built against them.
#
# Horovod 0.28.1 (its last release) does not build against current PyTorch/TensorFlow as published; see
# cxx17_wrapper.sh for the two source-level workarounds. The wheel takes ~7 minutes on 2 cores, so it is
# cached outside the checkout under $HVDJOB_CACHE/wheels/<key>/, where <key> hashes every input that
# changes the binary: Python, torch, TensorFlow and Horovod versions, the build flags, the compiler
# and the wrapper itself. A second setup on the same machine reuses it.
#
# Environment knobs (all optional):
#   VENV            virtual environment path                   (default .venv)
#   PYTHON          interpreter the venv is made from            (default python3)
#   TORCH_VERSION   PyTorch release                              (default 2.13.0)
#   TF_VERSION      TensorFlow release                           (default 2.21.0)
#   HVDJOB_GPU      1 = CUDA build (NCCL ops), 0 = CPU build     (default: auto, see below)
#   HVDJOB_CACHE    wheel cache root                             (default ~/.cache/hvdjob)
#   HVDJOB_FRAMEWORKS  "torch tensorflow" or a subset           (default both)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
VENV="${VENV:-$repo/.venv}"
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
TF_VERSION="${TF_VERSION:-2.21.0}"
HOROVOD_VERSION="${HOROVOD_VERSION:-0.28.1}"
CACHE="${HVDJOB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hvdjob}"
FRAMEWORKS="${HVDJOB_FRAMEWORKS:-torch tensorflow}"

log() { echo "setup: $*"; }

# --- GPU or CPU -------------------------------------------------------------------------------
# The CUDA path needs all three: a visible NVIDIA GPU, a CUDA compiler and NCCL headers.
detect_gpu() {
  command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q "^GPU" || return 1
  command -v nvcc >/dev/null 2>&1 || return 1
  for d in "${NCCL_HOME:-}" /usr /usr/local /usr/local/cuda; do
    [[ -n "$d" && -f "$d/include/nccl.h" ]] && return 0
  done
  return 1
}
if [[ -z "${HVDJOB_GPU:-}" ]]; then
  if detect_gpu; then HVDJOB_GPU=1; else HVDJOB_GPU=0; fi
fi
log "build type: $([[ $HVDJOB_GPU == 1 ]] && echo 'CUDA (NCCL GPU operations)' || echo CPU)"

# --- virtual environment ----------------------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
# pip's "Location ... is ignored" lines come from optional local indexes and are noise here.
pip_install() {
  "$PY" -m pip install --quiet --disable-pip-version-check "$@" 2> >(grep -v "is ignored: it is neither" >&2)
}
PIP=(pip_install)
"${PIP[@]}" --upgrade "pip>=23" "setuptools<81" wheel packaging

want_torch=0; want_tf=0
[[ " $FRAMEWORKS " == *" torch "* ]] && want_torch=1
[[ " $FRAMEWORKS " == *" tensorflow "* ]] && want_tf=1

if ((want_torch)); then
  log "installing torch==$TORCH_VERSION"
  # On this machine kind the CPU wheel is found locally; elsewhere PyPI's default Linux wheel is a
  # CUDA build, which also runs on CPU. TORCH_INDEX_URL picks another index (e.g. a CPU-only one).
  if [[ -n "${TORCH_INDEX_URL:-}" ]]; then
    "${PIP[@]}" "torch==$TORCH_VERSION" --index-url "$TORCH_INDEX_URL"
  else
    "${PIP[@]}" "torch==$TORCH_VERSION"
  fi
fi
if ((want_tf)); then
  # tf-keras depends on the "tensorflow" distribution (CPU-capable on Linux); the GPU build adds CUDA wheels.
  tf_pkg="tensorflow"
  [[ $HVDJOB_GPU == 1 ]] && tf_pkg="tensorflow[and-cuda]"
  log "installing $tf_pkg==$TF_VERSION and tf-keras"
  "${PIP[@]}" "$tf_pkg==$TF_VERSION" "tf-keras~=${TF_VERSION%.*}.0"
fi

# cmake >= 4 rejects Gloo's cmake_minimum_required: use the system one when it is older, else a pip one.
cmake_ok() {
  local v
  v="$("$1" --version 2>/dev/null | head -1 | awk '{print $3}')" || return 1
  [[ -n "$v" && "${v%%.*}" -lt 4 && "${v%%.*}" -ge 3 ]]
}
if ! { command -v cmake >/dev/null 2>&1 && cmake_ok "$(command -v cmake)"; }; then
  log "installing cmake<4 into the venv"
  "${PIP[@]}" "cmake>=3.13,<4"
fi
export PATH="$VENV/bin:$PATH"

# Runtime dependencies of horovod and of hvdjob itself (installed before the build: --no-build-isolation).
# rich: the launcher's progress bar; tensorboard: torch's event writer and the reader tests use;
# matplotlib: hvdjob report.
"${PIP[@]}" "cloudpickle" "psutil" "pyyaml" "click>=8" "numpy" "scikit-learn" "rich" "tensorboard" "matplotlib" \
  "mpi4py" 2>/dev/null \
  || "${PIP[@]}" "cloudpickle" "psutil" "pyyaml" "click>=8" "numpy" "scikit-learn" "rich" "tensorboard" "matplotlib"

# --- Horovod ----------------------------------------------------------------------------------
build_env=(HOROVOD_WITHOUT_MXNET=1 HOROVOD_WITH_GLOO=1)
((want_torch)) && build_env+=(HOROVOD_WITH_PYTORCH=1) || build_env+=(HOROVOD_WITHOUT_PYTORCH=1)
((want_tf)) && build_env+=(HOROVOD_WITH_TENSORFLOW=1) || build_env+=(HOROVOD_WITHOUT_TENSORFLOW=1)
if command -v mpicxx >/dev/null 2>&1; then build_env+=(HOROVOD_WITH_MPI=1); else build_env+=(HOROVOD_WITHOUT_MPI=1); fi
[[ $HVDJOB_GPU == 1 ]] && build_env+=(HOROVOD_GPU_OPERATIONS=NCCL)

versions="$("$PY" - <<'PYEOF'
import importlib.metadata as md, sys
def v(name):
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return "none"
print(f"py{sys.version_info.major}.{sys.version_info.minor}",
      "torch=" + v("torch"), "tf=" + v("tensorflow"))
PYEOF
)"
compiler="$(c++ --version | head -1)"
mpi="$(command -v mpirun >/dev/null && mpirun --version 2>/dev/null | head -1 || echo none)"
# Fixes applied to Horovod's source before the build (see each file's header for why).
patches=("$here"/patches/*.patch)
patches_hash="$(cat "${patches[@]}" | sha256sum | cut -c1-16)"
key_text="horovod=$HOROVOD_VERSION $versions ${build_env[*]} compiler=$compiler mpi=$mpi wrapper=$(sha256sum "$here/cxx17_wrapper.sh" | cut -c1-16) patches=$patches_hash"
key="$(echo "$key_text" | sha256sum | cut -c1-16)"
wheel_dir="$CACHE/wheels/horovod-$HOROVOD_VERSION-$key"

installed_key_file="$VENV/.hvdjob-horovod-key"
if [[ -f "$installed_key_file" && "$(cat "$installed_key_file")" == "$key" ]] && "$PY" -c "import horovod" 2>/dev/null; then
  log "horovod $HOROVOD_VERSION already installed for this build key ($key)"
else
  if ! ls "$wheel_dir"/horovod-*.whl >/dev/null 2>&1; then
    log "building horovod $HOROVOD_VERSION (key $key; about 7 minutes on 2 cores)"
    log "  inputs: $key_text"
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    "$PY" -m pip download --quiet --no-cache-dir --no-deps --no-binary :all: \
      "horovod==$HOROVOD_VERSION" -d "$tmp/sdist" >"$tmp/build.log" 2>&1 \
      || { tail -20 "$tmp/build.log" >&2; echo "setup: cannot download horovod $HOROVOD_VERSION's source" >&2; exit 1; }
    tar -xzf "$tmp"/sdist/horovod-*.tar.gz -C "$tmp"
    src="$tmp/horovod-$HOROVOD_VERSION"
    for p in "${patches[@]}"; do
      log "  applying $(basename "$p")"
      patch -p1 -s -d "$src" <"$p" || { echo "setup: $(basename "$p") does not apply to horovod $HOROVOD_VERSION" >&2; exit 1; }
    done
    env "${build_env[@]}" \
      CXX="$here/cxx17_wrapper.sh" HVDJOB_REAL_CXX="$(command -v c++)" \
      MAKEFLAGS="-j$(nproc)" \
      "$PY" -m pip wheel --no-cache-dir --no-deps --no-build-isolation \
        "$src" -w "$tmp" >>"$tmp/build.log" 2>&1 \
      || { tail -40 "$tmp/build.log" >&2; echo "setup: horovod build failed (full log above)" >&2; exit 1; }
    mkdir -p "$wheel_dir"
    cp "$tmp"/horovod-*.whl "$wheel_dir/"
    echo "$key_text" >"$wheel_dir/KEY.txt"
  else
    log "reusing cached horovod wheel $wheel_dir"
  fi
  "${PIP[@]}" --force-reinstall --no-deps "$wheel_dir"/horovod-*.whl
  echo "$key" >"$installed_key_file"
fi

# --- hvdjob itself ----------------------------------------------------------------------------
"${PIP[@]}" --no-build-isolation -e "$repo[test]" 2>/dev/null || "${PIP[@]}" -e "$repo"
# The test tools (also in pyproject's [test] extra), in case the editable install fell back to no extras.
"${PIP[@]}" "pytest>=7" "pytest-timeout" "hypothesis>=6"
log "done: $("$PY" -c 'import horovod; print("horovod", horovod.__version__)')"
