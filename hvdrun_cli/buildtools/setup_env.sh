#!/usr/bin/env bash
# Create the virtual environment with PyTorch, TensorFlow (+ tf-keras) and a Horovod built against them.
#
# Horovod 0.28.1 (its last release) does not build against current PyTorch/TensorFlow as published; see
# cxx_wrapper.sh for the source-level workarounds. build_plan.py decides the build (CUDA or CPU, the
# flags, the C++ standard torch's headers need) and its cache key. The wheel takes 3-8 minutes on 2
# cores, so it is cached outside the checkout under $HVDJOB_CACHE/wheels/horovod-<version>-<cpu|cuda>-<key>/,
# where <key> hashes every input that changes the binary. A second setup on the same machine reuses it.
#
# Environment knobs (all optional):
#   VENV               virtual environment path                       (default .venv)
#   PYTHON             interpreter the venv is made from               (default python3)
#   TORCH_VERSION      PyTorch release                                 (default 2.13.0)
#   TORCH_INDEX_URL    index to take torch from (e.g. a CPU-only one)  (default: pip's configuration)
#   TF_VERSION         TensorFlow release                              (default 2.21.0)
#   HVDJOB_GPU         1 = CUDA build (NCCL ops), 0 = CPU build        (default: detect, see build_plan.py)
#   HVDJOB_CACHE       wheel cache root                                (default ~/.cache/hvdjob)
#   HVDJOB_FRAMEWORKS  "torch tensorflow" or one of them               (default both; CUDA builds: torch)
#   HOROVOD_BUILD_CUDA_CC_LIST  CUDA architectures of a CUDA build     (default 75,80,90)
set -euo pipefail
# The whole script is one block, so bash reads it completely before running it: editing or updating
# the checkout while a setup runs (it takes minutes) cannot change what this run does.
{
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
VENV="${VENV:-$repo/.venv}"
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
TF_VERSION="${TF_VERSION:-2.21.0}"
export HOROVOD_VERSION="${HOROVOD_VERSION:-0.28.1}"
started=$SECONDS

log() { echo "setup: $*"; }
die() { echo "setup: $1" >&2; exit "${2:-1}"; }

# The interpreter to make the venv from. pyenv's shim refuses a python3.X that is installed but not the
# selected version ("command not found"): then take that interpreter from pyenv's versions directly.
resolve_python() {
  if "$1" -c "" >/dev/null 2>&1; then command -v "$1"; return 0; fi
  if [[ "$1" != */* ]] && command -v pyenv >/dev/null 2>&1; then
    local found
    found="$(ls -d "$(pyenv root)"/versions/*/bin/"$1" 2>/dev/null | sort -V | tail -1)"
    [[ -n "$found" ]] && "$found" -c "" >/dev/null 2>&1 && { echo "$found"; return 0; }
  fi
  return 1
}
interpreter="$(resolve_python "$PYTHON")" || die "PYTHON=$PYTHON: no such interpreter on PATH" 2
PYTHON="$interpreter"

# --- GPU or CPU, which frameworks ---------------------------------------------------------------
gpu=0; why=""; chosen=""; cuda_major=""
choice="$("$PYTHON" "$here/build_plan.py" choose)" || exit 2
while read -r name value; do
  case "$name" in
    gpu) gpu="$value" ;;
    why) why="$value" ;;
    frameworks) chosen="$value" ;;
    cuda_major) cuda_major="$value" ;;
  esac
done <<<"$choice"
log "build type: $([[ $gpu == 1 ]] && echo 'CUDA (NCCL GPU operations)' || echo CPU): $why"
export HVDJOB_GPU_BUILD="$gpu" HVDJOB_FRAMEWORKS="$chosen"

# --- virtual environment ----------------------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating $VENV with $("$PYTHON" --version 2>&1)"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
# pip's "Location ... is ignored" lines come from optional local indexes and are noise here.
pip_install() {
  "$PY" -m pip install --quiet --disable-pip-version-check "$@" 2> >(grep -v "is ignored: it is neither" >&2)
}
pip_install --upgrade "pip>=23" "setuptools<81" wheel packaging

if [[ " $chosen " == *" torch "* ]]; then
  log "installing torch==$TORCH_VERSION"
  # On this machine kind the CPU wheel of 2.13 is found locally; elsewhere (and for 2.14+) PyPI's default
  # Linux wheel is a CUDA build, which also runs on CPU. TORCH_INDEX_URL picks another index.
  if [[ -n "${TORCH_INDEX_URL:-}" ]]; then
    pip_install "torch==$TORCH_VERSION" --index-url "$TORCH_INDEX_URL"
  else
    pip_install "torch==$TORCH_VERSION"
  fi
fi
if [[ " $chosen " == *" tensorflow "* ]]; then
  log "installing tensorflow==$TF_VERSION and tf-keras"
  pip_install "tensorflow==$TF_VERSION" "tf-keras~=${TF_VERSION%.*}.0"
fi
if [[ $gpu == 1 ]]; then
  # NCCL's headers and library; a CUDA torch already depends on this wheel, so it is usually there.
  log "installing nvidia-nccl-cu$cuda_major (NCCL headers and library)"
  pip_install "nvidia-nccl-cu$cuda_major"
fi

# cmake >= 4 rejects Gloo's cmake_minimum_required: use the system one when it is older, else a pip one.
cmake_ok() {
  local v
  v="$("$1" --version 2>/dev/null | head -1 | awk '{print $3}')" || return 1
  [[ -n "$v" && "${v%%.*}" -lt 4 && "${v%%.*}" -ge 3 ]]
}
if ! { command -v cmake >/dev/null 2>&1 && cmake_ok "$(command -v cmake)"; }; then
  log "installing cmake<4 into the venv"
  pip_install "cmake>=3.13,<4"
fi
export PATH="$VENV/bin:$PATH"

# Runtime dependencies of horovod and of hvdjob itself (installed before the build: --no-build-isolation).
# rich: the launcher's progress bar; tensorboard: torch's event writer and the reader tests use;
# matplotlib: hvdjob report.
pip_install "cloudpickle" "psutil" "pyyaml" "click>=8" "numpy" "scikit-learn" "rich" "tensorboard" "matplotlib" \
  "mpi4py" 2>/dev/null \
  || pip_install "cloudpickle" "psutil" "pyyaml" "click>=8" "numpy" "scikit-learn" "rich" "tensorboard" "matplotlib"

# --- Horovod ----------------------------------------------------------------------------------
export HVDJOB_REAL_CXX="${HVDJOB_REAL_CXX:-$(command -v c++)}"
build_env=(); key=""; key_text=""; wheel_dir=""; action=""; torch_std=17; nccl_include=""; nccl_lib=""
plan_text="$("$PY" "$here/build_plan.py" plan)" || exit 2
while read -r name value; do
  case "$name" in
    env) build_env+=("$value") ;;
    torch_cxx_std) torch_std="$value" ;;
    nccl_include) nccl_include="$value" ;;
    nccl_lib) nccl_lib="$value" ;;
    key) key="$value" ;;
    key_text) key_text="$value" ;;
    wheel_dir) wheel_dir="$value" ;;
    action) action="$value" ;;
    note) log "$value" ;;
  esac
done <<<"$plan_text"

installed_key_file="$VENV/.hvdjob-horovod-key"
if [[ -f "$installed_key_file" && "$(cat "$installed_key_file")" == "$key" ]] && "$PY" -c "import horovod" 2>/dev/null; then
  log "horovod $HOROVOD_VERSION already installed for this build key ($key)"
else
  if [[ $action == build ]]; then
    log "building horovod $HOROVOD_VERSION (key $key; 3-8 minutes on 2 cores)"
    log "  inputs: $key_text"
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    if [[ $gpu == 1 ]]; then
      # The nvidia-nccl wheel ships only libnccl.so.2; the linker looks for libnccl.so.
      mkdir "$tmp/nccl-lib"
      for lib in "$nccl_lib"/libnccl.so*; do ln -s "$lib" "$tmp/nccl-lib/$(basename "$lib")"; done
      [[ -e "$tmp/nccl-lib/libnccl.so" ]] || ln -s "$(ls "$nccl_lib"/libnccl.so.* | head -1)" "$tmp/nccl-lib/libnccl.so"
      build_env+=("HOROVOD_NCCL_INCLUDE=$nccl_include" "HOROVOD_NCCL_LIB=$tmp/nccl-lib")
    fi
    # Horovod's source with the fixes in patches/ (each file's header says why; they are in the key).
    "$PY" -m pip download --quiet --no-cache-dir --no-deps --no-binary :all: \
      "horovod==$HOROVOD_VERSION" -d "$tmp/sdist" >"$tmp/build.log" 2>&1 \
      || { cp "$tmp/build.log" "$VENV/horovod-build.log"; die "cannot download horovod $HOROVOD_VERSION's source (log in $VENV/horovod-build.log)"; }
    tar -xzf "$tmp"/sdist/horovod-*.tar.gz -C "$tmp"
    src="$tmp/horovod-$HOROVOD_VERSION"
    for p in "$here"/patches/*.patch; do
      log "  applying $(basename "$p")"
      patch -p1 -s -d "$src" <"$p" || die "$(basename "$p") does not apply to horovod $HOROVOD_VERSION"
    done
    build_started=$SECONDS
    env "${build_env[@]}" \
      CXX="$here/cxx_wrapper.sh" HVDJOB_TORCH_CXX_STD="$torch_std" \
      MAKEFLAGS="-j$(nproc)" \
      "$PY" -m pip wheel --no-cache-dir --no-deps --no-build-isolation \
        "$src" -w "$tmp" >>"$tmp/build.log" 2>&1 \
      || { cp "$tmp/build.log" "$VENV/horovod-build.log"; grep -E "error|Error" "$tmp/build.log" | head -20 >&2
           die "horovod build failed: first errors above, full log in $VENV/horovod-build.log"; }
    mkdir -p "$wheel_dir"
    cp "$tmp"/horovod-*.whl "$wheel_dir/"
    echo "$key_text" >"$wheel_dir/KEY.txt"
    echo "built in $((SECONDS - build_started)) s on $(nproc) cores" >"$wheel_dir/BUILD.txt"
    log "built in $((SECONDS - build_started)) s: $(ls "$wheel_dir"/horovod-*.whl)"
  else
    log "reusing cached horovod wheel $wheel_dir"
  fi
  pip_install --force-reinstall --no-deps "$wheel_dir"/horovod-*.whl
  echo "$key" >"$installed_key_file"
fi

# --- hvdjob itself ----------------------------------------------------------------------------
pip_install --no-build-isolation -e "$repo[test]" 2>/dev/null || pip_install -e "$repo"
# The test tools (also in pyproject's [test] extra), in case the editable install fell back to no extras.
pip_install "pytest>=7" "pytest-timeout" "hypothesis>=6"
log "done in $((SECONDS - started)) s: $("$PY" -c 'import horovod; print("horovod", horovod.__version__)')"
exit 0
}
