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
from hvdrun_cli.launch.netif import address_for_peers, is_loopback


def free_port(bind_addr: str = "") -> int:
    """A TCP port that is free right now (the server binds it moments later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((bind_addr, 0))
        return int(sock.getsockname()[1])


def routable_address(peers: Sequence[str] = ()) -> str:
    """This host's address as the other nodes of the job (``peers``) see it.

    The route towards a peer decides (see netif.py: the host's own name often resolves to
    loopback); without peers, or when none resolves, the host's name is the fallback. A loopback
    answer while peers exist is refused: ranks on those nodes could never reach it.
    """
    own = socket.gethostname()
    others = [p for p in peers if p not in (own, own.split(".")[0], "localhost")]
    found = address_for_peers(others)
    if found:
        return found
    try:
        by_name = socket.gethostbyname(own)
    except OSError:
        by_name = "127.0.0.1"
    if others and is_loopback(by_name):
        raise LaunchError(
            f"cannot tell which address of {own} the nodes {', '.join(sorted(set(others)))} reach: "
            f"{own} resolves to {by_name} and no route to them was found; "
            "set horovod.network_interfaces to the interface the nodes share"
        )
    return by_name


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
