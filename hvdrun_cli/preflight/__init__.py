"""Preflight across hosts: can a job start and communicate on these machines?

``check_hosts`` gives one verdict per host (reachable by ssh, same Python/Horovod/framework
versions as this machine, a subnet shared by all hosts, a working collective with measured latency
and bandwidth); ``hvdjob doctor --hostfile``/``-H`` prints them. ``reachable_or_raise`` is the quick
part alone, for ``hvdjob run`` to call before it starts ranks on several hosts.

Launcher side: nothing here imports a framework. ``probe``, ``ring_mpi`` and ``ring_gloo`` run on
the hosts, in their own processes. The names below are imported on first use, so running one of
those modules with ``python -m`` on a host loads only that module, not the launcher-side machinery.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DEFAULT_TIMEOUT_S": "hvdrun_cli.preflight.check",
    "check_hosts": "hvdrun_cli.preflight.check",
    "preflight": "hvdrun_cli.preflight.check",
    "reachable_or_raise": "hvdrun_cli.preflight.check",
    "require_reachable_hosts": "hvdrun_cli.preflight.gate",
    "HostFacts": "hvdrun_cli.preflight.model",
    "HostVerdict": "hvdrun_cli.preflight.model",
    "Interface": "hvdrun_cli.preflight.model",
    "LinkResult": "hvdrun_cli.preflight.model",
    "NetworkResult": "hvdrun_cli.preflight.model",
    "PreflightReport": "hvdrun_cli.preflight.model",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
