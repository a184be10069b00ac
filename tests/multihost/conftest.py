"""Namespace hosts for the multi-host tests (see hosts_fixture.py): built once per session, removed after."""
from __future__ import annotations

from typing import Iterator

import pytest

from tests.multihost.hosts_fixture import HostCluster, HostsUnavailable, namespace_hosts

HOST_COUNT = 3  # two carry the 4-rank jobs; the third makes the doctor's ring a real ring


@pytest.fixture(scope="session")
def ns_hosts() -> Iterator[HostCluster]:
    try:
        with namespace_hosts(HOST_COUNT) as cluster:
            yield cluster
    except HostsUnavailable as exc:
        pytest.skip(str(exc))
