#!/usr/bin/env bash
# Install the Debian packages hvdjob needs when they are missing.
#
# Usage: system_packages.sh runtime|test
#   runtime: Open MPI (mpirun + headers so Horovod builds its MPI controller), a C++ toolchain, cmake,
#            patch (for the fixes in patches/ applied to Horovod's source).
#   test:    also a real single-node Slurm (slurmctld, slurmd, munge), sshd and iproute2 for the
#            multi-host tests.
# Without root (and without passwordless sudo) nothing is installed: the missing package names are
# printed so an administrator can install them, and the script exits 1.
set -euo pipefail

want=(openmpi-bin libopenmpi-dev g++ make patch)
if [[ "${1:-runtime}" == "test" ]]; then
  want+=(slurmctld slurmd slurm-client munge openssh-server openssh-client iproute2 procps)
fi
if ! command -v cmake >/dev/null 2>&1; then
  want+=(cmake)
fi

missing=()
for pkg in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if ((${#missing[@]} == 0)); then
  echo "system packages: all present"
  exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
else
  echo "hvdjob setup: missing system packages: ${missing[*]}" >&2
  echo "hvdjob setup: install them as root (e.g. apt-get install ${missing[*]}) and run make setup again" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "hvdjob setup: no apt-get here; install the equivalents of: ${missing[*]}" >&2
  exit 1
fi

echo "system packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "system packages: done"
