"""Rank side of the MPI network test: one rank per host, started by mpirun (needs mpi4py).

1. An allreduce of ``--mib`` MiB of doubles whose result every rank checks: proves the hosts can
   run a collective, and times it.
2. For each link of the ring (rank i -> rank i+1), while every other rank waits: a ping-pong of
   small messages (latency: median half round trip) and ``--mib`` MiB messages sent one way (bandwidth). Links are measured
   one at a time so they do not share the wire and the numbers describe that link alone.

Rank 0 prints one JSON line with every rank's hostname and the results. Never imported by hvdjob.
"""
from __future__ import annotations

import argparse
import array
import json
import socket
import statistics
import time
from typing import Dict, List

from mpi4py import MPI

MIB = 1024 * 1024
PING_ROUNDS = 50
BANDWIDTH_ROUNDS = 3


def allreduce_check(comm: "MPI.Comm", mib: float) -> Dict[str, object]:
    rank, size = comm.Get_rank(), comm.Get_size()
    count = max(1, int(mib * MIB) // 8)
    send = array.array("d", [float(rank + 1)]) * count
    recv = array.array("d", [0.0]) * count
    comm.Barrier()
    started = MPI.Wtime()
    comm.Allreduce(send, recv, op=MPI.SUM)
    seconds = MPI.Wtime() - started
    expected = size * (size + 1) / 2
    ok = recv[0] == expected and recv[count - 1] == expected
    return {"ok": bool(comm.allreduce(ok, op=MPI.LAND)), "seconds": comm.allreduce(seconds, op=MPI.MAX)}


def measure_link(comm: "MPI.Comm", src: int, dst: int, mib: float) -> Dict[str, float]:
    """Latency (half a round trip) and one-way bandwidth from ``src`` to ``dst``, timed at ``src``."""
    rank = comm.Get_rank()
    tiny = bytearray(1)
    payload = bytearray(max(1, int(mib * MIB)))
    result: Dict[str, float] = {}
    if rank == src:
        comm.Send(tiny, dest=dst)  # warm-up: connections are set up lazily
        comm.Recv(tiny, source=dst)
        rounds = []
        for _ in range(PING_ROUNDS):
            started = time.perf_counter()
            comm.Send(tiny, dest=dst)
            comm.Recv(tiny, source=dst)
            rounds.append(time.perf_counter() - started)
        # The median: one descheduled round on a busy machine must not stand for the link.
        result["latency_us"] = statistics.median(rounds) / 2 * 1e6
        best = float("inf")
        for _ in range(BANDWIDTH_ROUNDS):
            started = time.perf_counter()
            comm.Send(payload, dest=dst)
            comm.Recv(tiny, source=dst)  # the ack says the whole message arrived
            best = min(best, time.perf_counter() - started)
        result["bandwidth_mib_s"] = len(payload) / MIB / best
    elif rank == dst:
        for _ in range(PING_ROUNDS + 1):
            comm.Recv(tiny, source=src)
            comm.Send(tiny, dest=src)
        for _ in range(BANDWIDTH_ROUNDS):
            comm.Recv(payload, source=src)
            comm.Send(tiny, dest=src)
    comm.Barrier()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=float, default=16.0)
    args = parser.parse_args()
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    hostnames = comm.gather(socket.gethostname(), root=0)
    allreduce = allreduce_check(comm, args.mib)
    pairs = [(i, (i + 1) % size) for i in range(size if size > 2 else size - 1)]
    mine: List[Dict[str, float]] = []
    for src, dst in pairs:
        measured = measure_link(comm, src, dst, args.mib)
        if measured:
            mine.append({"from_rank": src, "to_rank": dst, **measured})
    links = comm.gather(mine, root=0)
    if rank == 0:
        flat = sorted((link for per_rank in links for link in per_rank), key=lambda link: link["from_rank"])
        print(json.dumps({"hostnames": hostnames, "mib": args.mib, "allreduce": allreduce, "links": flat}), flush=True)


if __name__ == "__main__":
    main()
