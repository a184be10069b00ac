#!/usr/bin/env bash
# C++ compiler wrapper used only while building Horovod 0.28.1 from source (passed as CXX; CMake
# also hands it to nvcc as the host compiler).
#
# Why it exists:
#  * Horovod 0.28.1 compiles its extensions with -std=c++14. PyTorch >= 2.1 headers need C++17, and
#    PyTorch >= 2.14 headers need C++20 (c10/util/intrusive_ptr.h uses <compare>/std::strong_ordering).
#    Units of Horovod's PyTorch extension (those compiled with -DPYTORCH_VERSION=...) get the standard
#    in HVDJOB_TORCH_CXX_STD (17 or 20, chosen by build_plan.py from torch's headers); every other unit
#    gets -std=c++14 lifted to -std=c++17 (TensorFlow 2.21 asks for C++17 itself).
#  * horovod/tensorflow/xla_mpi_ops.cc (GPU XLA custom calls, only used with HOROVOD_ENABLE_XLA_OPS=1)
#    includes XLA headers that moved in TensorFlow >= 2.16. Its whole body sits under
#    `#if TENSORFLOW_VERSION >= 2006000000`, so compiling that single file with TENSORFLOW_VERSION=0
#    yields an empty unit and the real TensorFlow ops build normally.
# The real compiler is taken from HVDJOB_REAL_CXX (default: c++).
set -euo pipefail
real="${HVDJOB_REAL_CXX:-c++}"
torch_std="${HVDJOB_TORCH_CXX_STD:-17}"
xla_unit=0
torch_unit=0
for arg in "$@"; do
  case "$arg" in
    *xla_mpi_ops.cc) xla_unit=1 ;;
    -DPYTORCH_VERSION=*) torch_unit=1 ;;
  esac
done
std=17
((torch_unit)) && std="$torch_std"
args=()
for arg in "$@"; do
  case "$arg" in
    -std=c++14 | -std=c++17 | -std=c++1y | -std=c++1z) args+=("-std=c++$std") ;;
    -std=gnu++14 | -std=gnu++17 | -std=gnu++1y | -std=gnu++1z) args+=("-std=gnu++$std") ;;
    -DTENSORFLOW_VERSION=*) ((xla_unit)) || args+=("$arg") ;;
    *) args+=("$arg") ;;
  esac
done
if ((xla_unit)); then
  args+=("-DTENSORFLOW_VERSION=0")
fi
exec "$real" "${args[@]}"
