"""Namespace hosts for the multi-host tests (see hosts_fixture.py): built once per session, removed after."""
from __future__ import annotations

from typing import Iterator

import pytest

from tests.multihost.hosts_fixture import HostCluster, HostsUnavailable, namespace_hosts
from tests.multihost.slurm_nodes import namespace_slurm
from tests.slurm_cluster import SlurmCluster, missing_binaries

HOST_COUNT = 3  # two carry the 4-rank jobs; the third makes the doctor's ring a real ring


@pytest.fixture(scope="session")
def ns_hosts() -> Iterator[HostCluster]:
    try:
        with namespace_hosts(HOST_COUNT) as cluster:
            yield cluster
    except HostsUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def ns_slurm(ns_hosts: HostCluster) -> Iterator[SlurmCluster]:
    """A 2-node Slurm whose nodes are namespace hosts (see slurm_nodes.py)."""
    missing = missing_binaries()
    if missing:
        pytest.skip(f"Slurm is not installed here (missing: {', '.join(missing)})")
    with namespace_slurm(ns_hosts) as cluster:
        yield cluster
