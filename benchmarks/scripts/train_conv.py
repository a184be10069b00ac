"""A compute-bound workload: a small conv net on synthetic 32x32 RGB images, batch 128 per process.

    train_conv.py --out OUT.json [--steps N]            # under hvdjob run: Horovod DistributedOptimizer
    train_conv.py --out OUT.json --solo --cpu K         # no Horovod, one thread pinned to CPU K

Writes {"samples_per_sec": ...} for this process's (solo) or all ranks' (Horovod) samples, timed
after a few warm-up steps, so the suite can compare np=2 against two pinned processes that do the
same work with no communication (the machine's compute-only limit).
"""
import argparse
import json
import os
import time

import torch
import torch.nn as nn

BATCH = 128
WARMUP = 3


def model() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 8 * 8, 10),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--solo", action="store_true")
    parser.add_argument("--cpu", type=int, default=None)
    args = parser.parse_args()
    if args.solo:
        if args.cpu is not None:
            os.sched_setaffinity(0, {args.cpu})
        torch.set_num_threads(1)
        size, rank, hvd = 1, 0, None
    else:
        import horovod.torch as hvd
        hvd.init()
        size, rank = hvd.size(), hvd.rank()
    torch.manual_seed(0)
    net = model()
    opt = torch.optim.SGD(net.parameters(), lr=0.01 * size)
    if hvd is not None:
        opt = hvd.DistributedOptimizer(opt, named_parameters=net.named_parameters())
        hvd.broadcast_parameters(net.state_dict(), root_rank=0)
    x = torch.randn(BATCH, 3, 32, 32)
    y = torch.randint(0, 10, (BATCH,))
    for step in range(WARMUP + args.steps):
        if step == WARMUP:
            start = time.perf_counter()
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    seconds = time.perf_counter() - start
    if rank == 0:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump({"samples_per_sec": BATCH * size * args.steps / seconds, "size": size,
                       "threads": torch.get_num_threads()}, fh)


if __name__ == "__main__":
    main()
