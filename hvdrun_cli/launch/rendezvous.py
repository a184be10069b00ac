"""Gloo rendezvous served by hvdjob itself (local and srun launches).

Uses Horovod's own HTTP rendezvous server classes, so the protocol is exactly the one Horovod's Gloo
controller speaks; only the lightweight ``horovod.runner.http`` module is imported (no frameworks).
"""
from __future__ import annotations

import socket
import threading
from typing import Optional, Sequence

from hvdrun_cli.errors import LaunchError
from hvdrun_cli.hosts import SlotInfo


def free_port(bind_addr: str = "") -> int:
    """A TCP port that is free right now (the server binds it moments later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((bind_addr, 0))
        return int(sock.getsockname()[1])


def routable_address() -> str:
    """This host's address as other nodes of an allocation see it."""
    name = socket.gethostname()
    try:
        return socket.gethostbyname(name)
    except OSError:
        return "127.0.0.1"


class Rendezvous:
    """Start/stop wrapper around Horovod's RendezvousHTTPServer on a fixed port."""

    def __init__(self, port: int, layout: Sequence[SlotInfo], bind_addr: str = ""):
        try:
            from horovod.runner.http.http_server import RendezvousHandler, RendezvousHTTPServer
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise LaunchError(f"horovod is not importable here ({exc}); run make setup") from exc
        try:
            self._httpd = RendezvousHTTPServer((bind_addr, port), RendezvousHandler, 0)
        except OSError as exc:
            raise LaunchError(f"cannot serve the Gloo rendezvous on port {port}: {exc}") from exc
        self._httpd.init(list(layout))
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="rendezvous", daemon=True)
        self._thread.start()

    def reset(self, layout: Sequence[SlotInfo]) -> None:
        """Clear all keys before a restart attempt."""
        with self._httpd.cache_lock:
            self._httpd.cache.clear()
        self._httpd.init(list(layout))

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)
