"""torch.distributed (gloo) allreduce time per message size, the same sizes and rounds as allreduce_bw.py.

Usage (under torchrun): allreduce_bw_torch.py OUT.json MIB [MIB ...]; rank 0 writes seconds per allreduce.
"""
import json
import sys
import time

import torch
import torch.distributed as dist

from bwsizes import MIB, rounds_for


def main(out_path: str, sizes_mib: list) -> None:
    dist.init_process_group("gloo")
    results = {}
    for size in sizes_mib:
        nbytes = size * MIB
        tensor = torch.ones(nbytes // 4, dtype=torch.float32)
        dist.all_reduce(tensor)
        if float(tensor[0]) != dist.get_world_size():
            raise RuntimeError(f"allreduce gave {float(tensor[0])}")
        tensor.fill_(1.0)
        rounds = rounds_for(nbytes)
        dist.barrier()
        start = time.perf_counter()
        for _ in range(rounds):
            dist.all_reduce(tensor)
        seconds = (time.perf_counter() - start) / rounds
        results[str(size)] = {"seconds": seconds, "rounds": rounds, "bytes": nbytes}
        del tensor
    if dist.get_rank() == 0:
        with open(out_path, "w", encoding="utf-8") as fh:
            json.dump({"size": dist.get_world_size(), "results": results}, fh, indent=2)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], [int(s) for s in sys.argv[2:]])
