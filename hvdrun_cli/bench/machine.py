"""The machine a benchmark ran on, for the report: cores, CPU model, load, software versions.

Versions come from installed package metadata, so nothing here imports torch or Horovod (the
launcher side never does).
"""
from __future__ import annotations

import os
import platform
from typing import Dict, Optional

from hvdrun_cli.launch.tools import available_cores
from hvdrun_cli.versions import package_version


def cpu_model(cpuinfo: str) -> Optional[str]:
    """The first ``model name`` in /proc/cpuinfo text (None when absent, e.g. on some ARM boards)."""
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "model name":
            return value.strip()
    return None


def machine_info() -> Dict[str, object]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            model = cpu_model(fh.read())
    except OSError:
        model = None
    return {
        "cores": available_cores(),
        "cpu_model": model or platform.processor() or "unknown",
        "python": platform.python_version(),
        "torch": package_version("torch"),
        "horovod": package_version("horovod"),
        "platform": platform.platform(),
    }


def load_average() -> Optional[float]:
    """One-minute load average (None where the OS does not report one)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def describe_machine(info: Dict[str, object]) -> str:
    """One line for a README: what the numbers were measured on."""
    return (f"{info.get('cores')} cores ({info.get('cpu_model')}), Python {info.get('python')}, "
            f"torch {info.get('torch')}, Horovod {info.get('horovod')}")
