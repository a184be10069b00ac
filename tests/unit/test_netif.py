"""Which address other nodes reach this host on: the route decides, not the host's own name."""
from __future__ import annotations

import socket
from typing import Dict

import pytest

from hvdrun_cli.errors import LaunchError
from hvdrun_cli.launch import netif, rendezvous
from hvdrun_cli.launch.rank_io import gloo_iface_env


def resolver(table: Dict[str, str]):
    def resolve(name: str) -> str:
        if name not in table:
            raise socket.gaierror(name)
        return table[name]
    return resolve


def test_loopback_addresses_are_recognised() -> None:
    assert netif.is_loopback("127.0.1.1") and netif.is_loopback("::1")
    assert not netif.is_loopback("10.1.2.3") and not netif.is_loopback("not-an-address")


def test_peers_that_do_not_resolve_or_resolve_to_loopback_give_no_answer() -> None:
    assert netif.address_for_peers(["ghost", "self"], resolver({"self": "127.0.1.1"})) is None


def test_the_source_address_towards_a_peer_is_the_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netif, "source_address_towards", lambda addr: {"10.0.0.7": "10.0.0.2"}.get(addr))
    found = netif.address_for_peers(["down", "node7"], resolver({"down": "127.0.0.1", "node7": "10.0.0.7"}))
    assert found == "10.0.0.2"


def test_loopback_interface_is_found_by_its_address() -> None:
    assert netif.interface_with_address("127.0.0.1") == "lo"
    assert netif.interface_address("lo") == "127.0.0.1"
    assert netif.interface_address("no-such-nic0") is None


def test_no_interface_is_chosen_towards_loopback() -> None:
    assert netif.interface_towards("127.0.0.1") is None


def test_a_name_on_loopback_with_unreachable_peers_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rendezvous.socket, "gethostname", lambda: "login1")
    monkeypatch.setattr(rendezvous.socket, "gethostbyname", lambda name: "127.0.1.1")
    monkeypatch.setattr(rendezvous, "address_for_peers", lambda peers: None)
    with pytest.raises(LaunchError, match=r"login1 resolves to 127\.0\.1\.1.*network_interfaces"):
        rendezvous.routable_address(["node1", "node2"])
    assert rendezvous.routable_address(["login1"]) == "127.0.1.1"  # only this host: loopback is right


def test_the_route_to_the_peers_wins_over_the_host_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rendezvous.socket, "gethostname", lambda: "node1")
    monkeypatch.setattr(rendezvous.socket, "gethostbyname", lambda name: "127.0.1.1")
    monkeypatch.setattr(rendezvous, "address_for_peers", lambda peers: "10.9.0.1" if list(peers) == ["node2"] else None)
    assert rendezvous.routable_address(["node1", "node2"]) == "10.9.0.1"


def test_rank_gets_the_interface_towards_the_rendezvous_unless_one_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("hvdrun_cli.launch.rank_io.interface_towards", lambda addr: {"10.9.0.1": "ib0"}.get(addr))
    assert gloo_iface_env({"HOROVOD_GLOO_RENDEZVOUS_ADDR": "10.9.0.1"}) == {"HOROVOD_GLOO_IFACE": "ib0"}
    assert gloo_iface_env({"HOROVOD_GLOO_RENDEZVOUS_ADDR": "10.9.0.1", "HOROVOD_GLOO_IFACE": "eth3"}) == {}
    assert gloo_iface_env({"HOROVOD_GLOO_RENDEZVOUS_ADDR": "127.0.0.1"}) == {}
    assert gloo_iface_env({}) == {}


def test_only_the_first_few_peers_are_looked_up_for_the_route() -> None:
    looked_up = []

    def unresolvable(name: str) -> str:
        looked_up.append(name)
        raise OSError("no such host")

    assert netif.address_for_peers((f"node{i:05d}" for i in range(20000)), resolve=unresolvable) is None
    assert looked_up == [f"node{i:05d}" for i in range(netif.PEERS_TRIED)]
