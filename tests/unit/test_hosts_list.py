"""``-H a:2,b`` and the spec's ``resources.hosts``: same forms, errors keyed by their origin."""
from __future__ import annotations

import pytest

from hvdrun_cli.errors import HostfileError
from hvdrun_cli.hosts import Host, format_host_list, parse_host_list


@pytest.mark.parametrize(
    "entries, default_slots, expected",
    [
        (["a:2", "b:2"], None, [("a", 2), ("b", 2)]),
        (["a:2,b:2"], None, [("a", 2), ("b", 2)]),  # the raw -H value
        (["a", "b:3"], None, [("a", 1), ("b", 3)]),
        (["a", "b:3"], 4, [("a", 4), ("b", 3)]),  # resources.slots_per_host
        ([" a:2 , b "], None, [("a", 2), ("b", 1)]),
        (["localhost:2"], None, [("localhost", 2)]),
    ],
)
def test_valid_lists(entries: list, default_slots: "int | None", expected: list) -> None:
    hosts = parse_host_list(entries, "-H", default_slots)
    assert hosts == tuple(Host(name, slots) for name, slots in expected)


@pytest.mark.parametrize(
    "entries, origin, message",
    [
        (["a:0"], "-H", "-H: slot count must be a positive integer (got '0')"),
        (["a:2,b:x"], "-H", "-H: slot count must be a positive integer (got 'x')"),
        (["a:2,,b"], "-H", "-H: empty host entry; expected 'name' or 'name:N' (got 'a:2,,b')"),
        (["a", "b:-1"], "resources.hosts",
         "resources.hosts[1]: slot count must be a positive integer (got '-1')"),
        (["a", "b c"], "resources.hosts",
         "resources.hosts[1]: invalid host name: use letters, digits, '.', '_' and '-' "
         "(no '-' or '.' first); expected 'name' or 'name:N' (got 'b c')"),
        ([":2"], "-H", "-H: missing host name; expected 'name' or 'name:N' (got ':2')"),
        (["a:2,A:1"], "-H", "-H: duplicate host 'A' (first listed in -H)"),
        (["a", "b", "a:3"], "resources.hosts",
         "resources.hosts[2]: duplicate host 'a' (first listed in resources.hosts[0])"),
        ([], "resources.hosts", "resources.hosts: no hosts given; expected 'name' or 'name:N'"),
    ],
)
def test_errors_name_their_origin(entries: list, origin: str, message: str) -> None:
    with pytest.raises(HostfileError) as info:
        parse_host_list(entries, origin)
    assert str(info.value) == message


def test_all_entries_checked() -> None:
    with pytest.raises(HostfileError) as info:
        parse_host_list(["a:0", "b", "c:x"], "resources.hosts")
    assert [p.key for p in info.value.problems] == ["resources.hosts[0]", "resources.hosts[2]"]


def test_spec_locations_are_attached() -> None:
    with pytest.raises(HostfileError) as info:
        parse_host_list(["a", "b:0"], "resources.hosts", file="job.yaml", lines=[7, 8])
    assert str(info.value) == (
        "job.yaml:8: resources.hosts[1]: slot count must be a positive integer (got '0')")


def test_bad_default_slots_is_a_caller_bug() -> None:
    with pytest.raises(ValueError):
        parse_host_list(["a"], "-H", default_slots=0)


def test_format_round_trips() -> None:
    hosts = (Host("a", 2), Host("b", 1))
    assert format_host_list(hosts) == "a:2,b:1"
    assert parse_host_list([format_host_list(hosts)], "-H") == hosts
