"""Rank side of ``make gpu-check``: NCCL allreduce time per message size, one rank per local GPU.

Usage (as a job script, started by ``hvdjob run``): nccl_allreduce.py OUT.json MIB [MIB ...]. Each
rank pins its GPU by local rank; each size gets one checked warm-up and then timed in-place rounds
(as DistributedOptimizer reduces gradients), synchronised on the GPU so the time is the transfer's.
Rank 0 writes ``{"size": N, "results": {MIB: {"seconds", "rounds", "bytes"}}}``.
"""
import json
import sys
import time

import horovod.torch as hvd
import torch

MIB = 1 << 20
TARGET_BYTES = 8 << 30  # move about 8 GiB per size: well above launch noise on any GPU link


def main(out_path: str, sizes_mib: list) -> None:
    hvd.init()
    if not hvd.nccl_built() or not torch.cuda.is_available():
        raise SystemExit("gpu-check: Horovod without NCCL or no CUDA device in this rank")
    torch.cuda.set_device(hvd.local_rank())
    results = {}
    for size in sizes_mib:
        nbytes = size * MIB
        tensor = torch.ones(nbytes // 4, dtype=torch.float32, device="cuda")
        name = f"gpu-check.{size}"
        hvd.allreduce_(tensor, op=hvd.Sum, name=name)
        torch.cuda.synchronize()
        if float(tensor[0]) != hvd.size():
            raise RuntimeError(f"allreduce gave {float(tensor[0])}, expected {hvd.size()}")
        tensor.fill_(1.0)  # Average keeps every value at 1.0 round after round
        rounds = max(5, min(1000, TARGET_BYTES // nbytes))
        hvd.barrier()
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(rounds):
            hvd.allreduce_(tensor, op=hvd.Average, name=name)
        torch.cuda.synchronize()
        seconds = (time.perf_counter() - start) / rounds
        results[str(size)] = {"seconds": seconds, "rounds": rounds, "bytes": nbytes}
        del tensor
    if hvd.rank() == 0:
        with open(out_path, "w", encoding="utf-8") as fh:
            json.dump({"size": hvd.size(), "results": results}, fh, indent=2)


if __name__ == "__main__":
    main(sys.argv[1], [int(s) for s in sys.argv[2:]])
