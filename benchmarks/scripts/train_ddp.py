"""The same training loop with torch.distributed DistributedDataParallel (gloo), for ``torchrun``.

Same model, data, per-rank batch size, sharding and optimizer as train_hvd.py; rank 0 writes
summary.json to --out.
"""
import argparse
import os
import sys
import time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from workload import Workload, epoch_batches, write_summary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workload", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    work = Workload.load(args.workload)

    dist.init_process_group("gloo")
    rank, size = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(work.seed)
    data = work.data()
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    model = DistributedDataParallel(work.model(data))
    optimizer = torch.optim.SGD(model.parameters(), lr=work.lr * size, momentum=work.momentum)
    sampler = DistributedSampler(range(len(x)), num_replicas=size, rank=rank, shuffle=True, seed=work.seed)
    step, epoch, samples, first_step = 0, 0, 0, None
    while step < work.steps:
        for idx in epoch_batches(sampler, epoch, work.batch_size):
            if first_step is None:
                first_step = time.time()
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            optimizer.step()
            samples += len(idx) * size
            step += 1
            if step >= work.steps:
                break
        epoch += 1
    end = time.time()
    if rank == 0:
        write_summary(args.out, samples, first_step, end, size, {"loss": float(loss)})
    dist.barrier()  # both ranks done communicating: tearing gloo down mid-flight can abort the process
    dist.destroy_process_group()
    # torch's gloo teardown now and then aborts at interpreter shutdown ("terminate called without
    # an active exception", about 1 run in 40 on this machine); all is written, so skip finalizers.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
