"""Run on every host (``python -m hvdrun_cli.preflight.probe``): report what a rank would find there.

Started through ssh with the same interpreter path the ranks use, so "that path does not exist on
this host" shows up here rather than as a failed rank. Standard library only and no framework
imports (versions come from package metadata), so it answers in a fraction of a second. Prints one
JSON object on stdout.
"""
from __future__ import annotations

import array
import fcntl
import json
import platform
import shutil
import socket
import struct
import sys
from typing import Dict, List, Optional

from hvdrun_cli.versions import package_version

# Distribution names per package; TensorFlow ships under several.
DISTRIBUTIONS = {
    "hvdjob": ("hvdjob",),
    "horovod": ("horovod",),
    "torch": ("torch",),
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tensorflow-macos"),
    "mpi4py": ("mpi4py",),
}

# Linux ioctls that read one interface's flags, IPv4 address and netmask (from <linux/sockios.h>).
SIOCGIFFLAGS = 0x8913
SIOCGIFADDR = 0x8915
SIOCGIFNETMASK = 0x891B
IFF_UP = 0x1
IFF_LOOPBACK = 0x8


def package_versions() -> Dict[str, Optional[str]]:
    return {package: package_version(*names) for package, names in DISTRIBUTIONS.items()}


def _ioctl(sock: socket.socket, request: int, name: str) -> bytes:
    buf = array.array("B", struct.pack("256s", name.encode()[:15]))
    fcntl.ioctl(sock.fileno(), request, buf, True)
    return buf.tobytes()


def ipv4_interfaces() -> List[Dict[str, object]]:
    """Interfaces that are up, not loopback, with their (primary) IPv4 address and prefix length."""
    found: List[Dict[str, object]] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            try:
                flags = struct.unpack("H", _ioctl(sock, SIOCGIFFLAGS, name)[16:18])[0]
                if not flags & IFF_UP or flags & IFF_LOOPBACK:
                    continue
                address = socket.inet_ntoa(_ioctl(sock, SIOCGIFADDR, name)[20:24])
                mask = _ioctl(sock, SIOCGIFNETMASK, name)[20:24]
            except OSError:  # no IPv4 address on this interface
                continue
            prefixlen = sum(bin(byte).count("1") for byte in mask)
            found.append({"name": name, "address": address, "prefixlen": prefixlen})
    return found


def collect() -> Dict[str, object]:
    try:
        interfaces = ipv4_interfaces()
    except (OSError, AttributeError):  # not Linux: interfaces stay unknown
        interfaces = []
    return {
        "hostname": socket.gethostname(),
        "python": platform.python_version(),
        "executable": sys.executable,
        "packages": package_versions(),
        "interfaces": interfaces,
        "mpirun": shutil.which("mpirun"),
    }


def main() -> None:
    print(json.dumps(collect()), flush=True)


if __name__ == "__main__":
    main()
