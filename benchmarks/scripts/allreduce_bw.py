"""Horovod allreduce (Sum, float32) time per message size; rank 0 writes seconds per allreduce.

Usage: allreduce_bw.py OUT.json MIB [MIB ...] (whole MiB). Each size gets one untimed, checked
warm-up (buffers, Horovod's negotiation cache) and then enough timed rounds to move about 512 MiB.
Timed rounds reduce in place (``allreduce_``), as DistributedOptimizer does with gradients, so no
output tensor is allocated per round.
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
        hvd.allreduce_(tensor, op=hvd.Sum, name=name)
        if float(tensor[0]) != hvd.size():
            raise RuntimeError(f"allreduce gave {float(tensor[0])}, expected {hvd.size()}")
        tensor.fill_(1.0)
        rounds = rounds_for(nbytes)
        hvd.barrier()
        start = time.perf_counter()
        for _ in range(rounds):
            hvd.allreduce_(tensor, op=hvd.Sum, name=name)  # values double each round: 2**50 fits float32
        seconds = (time.perf_counter() - start) / rounds
        results[str(size)] = {"seconds": seconds, "rounds": rounds, "bytes": nbytes}
        del tensor
    if hvd.rank() == 0:
        with open(out_path, "w", encoding="utf-8") as fh:
            json.dump({"size": hvd.size(), "results": results}, fh, indent=2)


if __name__ == "__main__":
    main(sys.argv[1], [int(s) for s in sys.argv[2:]])
