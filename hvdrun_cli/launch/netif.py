"""Which of this host's addresses and interfaces the other nodes of a job reach it on.

A host's own name is a poor guide: many cluster nodes (and Debian's installer) map it to 127.0.1.1
in ``/etc/hosts``, so resolving ``gethostname()`` gives loopback, and a Gloo rendezvous or Gloo
device announced on it cannot be reached from any other node. The kernel's routing table knows
better: the source address of a route towards a peer is the address that peer can answer.
Stdlib only: the rank supervisor imports this on every node.
"""
from __future__ import annotations

import fcntl
import ipaddress
import itertools
import socket
import struct
from typing import Callable, Iterable, Optional

SIOCGIFADDR = 0x8915  # Linux ioctl: an interface's IPv4 address
_PROBE_PORT = 9  # discard; a UDP connect() sends nothing, it only picks the route


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def source_address_towards(address: str) -> Optional[str]:
    """The local address the kernel would send from to reach ``address`` (no packet is sent)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect((address, _PROBE_PORT))
            return str(sock.getsockname()[0])
    except OSError:
        return None


def interface_address(name: str) -> Optional[str]:
    """IPv4 address of interface ``name``, or None when it has none (or does not exist)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            packed = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
    except OSError:
        return None
    return socket.inet_ntoa(packed[20:24])


def interface_with_address(address: str) -> Optional[str]:
    """Name of the interface that carries ``address`` on this host."""
    try:
        names = [name for _index, name in socket.if_nameindex()]
    except OSError:
        return None
    for name in names:
        if interface_address(name) == address:
            return name
    return None


PEERS_TRIED = 16


def address_for_peers(
    peers: Iterable[str], resolve: Callable[[str], str] = socket.gethostbyname
) -> Optional[str]:
    """This host's address on the route to the first peer that resolves to a non-loopback address.

    Only the first ``PEERS_TRIED`` peers are tried: the route is the same for the nodes of one
    cluster, and a 20,000-host list of names that do not resolve here would cost a lookup each."""
    for peer in itertools.islice(peers, PEERS_TRIED):
        try:
            peer_address = resolve(peer)
        except OSError:
            continue
        if is_loopback(peer_address):
            continue
        source = source_address_towards(peer_address)
        if source and not is_loopback(source):
            return source
    return None


def interface_towards(address: str) -> Optional[str]:
    """Interface this host uses to reach ``address`` (None for loopback or no route)."""
    if is_loopback(address):
        return None
    source = source_address_towards(address)
    if not source or is_loopback(source):
        return None
    return interface_with_address(source)
