#!/usr/bin/env bash
# C++ compiler wrapper used only while building Horovod 0.28.1 from source.
#
# Why it exists:
#  * Horovod 0.28.1 compiles its extensions with -std=c++14; PyTorch >= 2.1 headers need C++17.
#    Every -std=c++14 (or gnu++14) is rewritten to -std=c++17.
#  * horovod/tensorflow/xla_mpi_ops.cc (GPU XLA custom calls, only used with HOROVOD_ENABLE_XLA_OPS=1)
#    includes XLA headers that moved in TensorFlow >= 2.16. Its whole body sits under
#    `#if TENSORFLOW_VERSION >= 2006000000`, so compiling that single file with TENSORFLOW_VERSION=0
#    yields an empty unit and the real TensorFlow ops build normally.
# The real compiler is taken from HVDJOB_REAL_CXX (default: c++).
set -euo pipefail
real="${HVDJOB_REAL_CXX:-c++}"
xla_unit=0
for arg in "$@"; do
  case "$arg" in
    *xla_mpi_ops.cc) xla_unit=1 ;;
  esac
done
args=()
for arg in "$@"; do
  case "$arg" in
    -std=c++14) args+=("-std=c++17") ;;
    -std=gnu++14) args+=("-std=gnu++17") ;;
    -DTENSORFLOW_VERSION=*) ((xla_unit)) || args+=("$arg") ;;
    *) args+=("$arg") ;;
  esac
done
if ((xla_unit)); then
  args+=("-DTENSORFLOW_VERSION=0")
fi
exec "$real" "${args[@]}"
