"""Gloo rendezvous served by hvdjob itself (local and srun launches).

Uses Horovod's own HTTP rendezvous server classes, so the protocol is exactly the one Horovod's Gloo
controller speaks; only the lightweight ``horovod.runner.http`` module is imported (no frameworks).
"""
from __future__ import annotations

import socket
import threading
from typing import Dict, Optional, Sequence

from hvdrun_cli.errors import LaunchError
from hvdrun_cli.hosts import SlotInfo
from hvdrun_cli.launch.netif import address_for_peers, is_loopback


# Listening sockets bound at plan time, by port, until the executor's Rendezvous takes one over:
# the port in the plan is held from the moment it is chosen, so no other process can take it.
_RESERVED: Dict[int, socket.socket] = {}
_LOCK = threading.Lock()


def reserve_port(bind_addr: str) -> int:
    """Bind and listen on a free port of ``bind_addr`` now; :class:`Rendezvous` serves on that socket."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((bind_addr, 0))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise LaunchError(f"cannot reserve a port for the Gloo rendezvous on {bind_addr}: {exc}") from exc
    port = int(sock.getsockname()[1])
    with _LOCK:
        _RESERVED[port] = sock
    return port


def release_port(port: int) -> None:
    """Close a reservation nobody will serve on (a plan that is only printed)."""
    with _LOCK:
        sock = _RESERVED.pop(port, None)
    if sock is not None:
        sock.close()


def _take_reserved(port: int) -> Optional[socket.socket]:
    with _LOCK:
        return _RESERVED.pop(port, None)


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


def _on_reserved_socket(server_class: type) -> type:
    """``server_class`` built on an already bound and listening socket instead of binding its own."""

    class OnReservedSocket(server_class):  # type: ignore[misc, valid-type]
        def __init__(self, sock: socket.socket, handler: type):
            self._reserved = sock
            super().__init__(sock.getsockname()[:2], handler, 0)

        def server_bind(self) -> None:
            self.socket.close()
            self.socket = self._reserved
            self.server_name, self.server_port = self.socket.getsockname()[:2]
            self.server_address = (self.server_name, self.server_port)

        def server_activate(self) -> None:
            pass  # listening since reserve_port()

    return OnReservedSocket


class Rendezvous:
    """Start/stop wrapper around Horovod's RendezvousHTTPServer on a fixed port.

    Serves on the socket :func:`reserve_port` bound for ``port`` when there is one (the normal case:
    bound to loopback for local jobs, to the job's address for srun), else binds ``bind_addr``.
    """

    def __init__(self, port: int, layout: Sequence[SlotInfo], bind_addr: str = "127.0.0.1"):
        try:
            from horovod.runner.http.http_server import RendezvousHandler, RendezvousHTTPServer
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise LaunchError(f"horovod is not importable here ({exc}); run make setup") from exc
        reserved = _take_reserved(port)
        try:
            if reserved is not None:
                self._httpd = _on_reserved_socket(RendezvousHTTPServer)(reserved, RendezvousHandler)
            else:
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
