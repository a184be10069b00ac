"""Minimal torch.distributed start-up (gloo): init, a tiny DDP model, one optimizer step.

The same work as first_step_hvd.py, for ``torchrun``; rank 0 writes when its first step began.
"""
import json
import os
import sys
import time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


def main(out_path: str) -> None:
    dist.init_process_group("gloo")
    model = DistributedDataParallel(torch.nn.Linear(32, 10))  # broadcasts rank 0's parameters
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(16, 32), torch.randint(0, 10, (16,))
    first_step = time.time()
    optimizer.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
    if dist.get_rank() == 0:
        with open(out_path, "w", encoding="utf-8") as fh:
            json.dump({"first_step_unix_time": first_step, "size": dist.get_world_size()}, fh)
    dist.barrier()  # both ranks done communicating: tearing gloo down mid-flight can abort the process
    dist.destroy_process_group()
    # torch's gloo teardown now and then aborts at interpreter shutdown ("terminate called without
    # an active exception", about 1 run in 40 on this machine); all is written, so skip finalizers.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1])
