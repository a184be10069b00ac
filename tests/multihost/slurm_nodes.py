"""A multi-node Slurm on the namespace hosts: slurmctld here, one slurmd inside each host.

slurmctld runs in the root namespace and listens on the bridge address, where every host reaches
it; each host's slurmd runs inside that host's network, hostname and mount namespaces (entered
with ``nsenter`` through the host's sshd), so jobs see exactly what a compute node shows them: its
own name (which resolves to 127.0.1.1 there, as on many clusters), its own address, the shared
filesystem. munged runs here too: its socket is a file, which every namespace reaches.
Everything lives in one temporary directory and is stopped and removed afterwards (see
tests/slurm_cluster.py, which also kills leftovers by the marker every daemon carries).
"""
from __future__ import annotations

import contextlib
import socket
from typing import Iterator

from tests.multihost.hosts_fixture import HostCluster
from tests.slurm_cluster import NodeDef, SlurmCluster, slurm_over_nodes

CPUS_PER_NODE = 2
NODE_COUNT = 2


@contextlib.contextmanager
def namespace_slurm(hosts: HostCluster, nodes: int = NODE_COUNT) -> Iterator[SlurmCluster]:
    """Slurm over the first ``nodes`` namespace hosts (partition ``debug``, CPUS_PER_NODE each)."""
    members = [NodeDef(h.name, h.address) for h in hosts.hosts[:nodes]]
    controller = NodeDef(socket.gethostname(), hosts.bridge_address)
    with slurm_over_nodes(members, controller=controller, cpus=CPUS_PER_NODE, enter_node=hosts.enter_argv) as cluster:
        yield cluster
