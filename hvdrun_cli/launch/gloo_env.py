"""The per-rank variables Horovod's Gloo controller reads (what ``horovodrun --gloo`` sets)."""
from __future__ import annotations

from typing import Dict, Optional

from hvdrun_cli.contract import slot_env  # noqa: F401  (re-exported for the launch builders)


def gloo_controller_env(addr: str, port: int, iface: Optional[str]) -> Dict[str, str]:
    env = {
        "HOROVOD_GLOO_RENDEZVOUS_ADDR": addr,
        "HOROVOD_GLOO_RENDEZVOUS_PORT": str(port),
        "HOROVOD_CONTROLLER": "gloo",
        "HOROVOD_CPU_OPERATIONS": "gloo",
    }
    if iface:
        env["HOROVOD_GLOO_IFACE"] = iface
    return env

