"""Horovod allreduce (Sum, float32) time per message size; rank 0 writes seconds per allreduce.

Usage: allreduce_bw.py OUT.json MIB [MIB ...] (whole MiB). Each size gets one untimed warm-up
(buffers, Horovod's negotiation cache) and then enough timed rounds to move about 512 MiB.
"""
import json
import sys
import time

import horovod.torch as hvd
import torch

from bwsizes import MIB, rounds_for


def main(out_path: str, sizes_mib: list) -> None:
    hvd.init()
    results = {}
    for size in sizes_mib:
        nbytes = size * MIB
        tensor = torch.ones(nbytes // 4, dtype=torch.float32)
        name = f"bw.{size}"
        hvd.allreduce(tensor, op=hvd.Sum, name=name)
        rounds = rounds_for(nbytes)
        hvd.barrier()
        start = time.perf_counter()
        for _ in range(rounds):
            out = hvd.allreduce(tensor, op=hvd.Sum, name=name)
        seconds = (time.perf_counter() - start) / rounds
        assert float(out[0]) == hvd.size()  # every rank contributed
        results[str(size)] = {"seconds": seconds, "rounds": rounds, "bytes": nbytes}
        del tensor, out
    if hvd.rank() == 0:
        with open(out_path, "w", encoding="utf-8") as fh:
            json.dump({"size": hvd.size(), "results": results}, fh, indent=2)


if __name__ == "__main__":
    main(sys.argv[1], [int(s) for s in sys.argv[2:]])
