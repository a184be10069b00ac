"""A hand-written Horovod training loop: what a user writes without hvdjob's managed mode.

Same model, data, per-rank batch size and optimizer as the managed job; no checkpoints, metrics or
stop checks. Rank 0 writes summary.json (to --out, or into $HVDJOB_RUN_DIR when run by hvdjob).
"""
import argparse
import os
import time

import horovod.torch as hvd
import torch
from torch.utils.data import DistributedSampler

from workload import Workload, epoch_batches, write_summary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workload", required=True)
    parser.add_argument("--out", default=os.path.join(os.environ.get("HVDJOB_RUN_DIR", "."), "summary.json"))
    args = parser.parse_args()
    work = Workload.load(args.workload)

    hvd.init()
    torch.manual_seed(work.seed)
    data = work.data()
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    model = work.model(data)
    sgd = torch.optim.SGD(model.parameters(), lr=work.lr * hvd.size(), momentum=work.momentum)
    optimizer = hvd.DistributedOptimizer(sgd,
                                         named_parameters=model.named_parameters())
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    sampler = DistributedSampler(range(len(x)), num_replicas=hvd.size(), rank=hvd.rank(), shuffle=True,
                                 seed=work.seed)
    step, epoch, samples, first_step = 0, 0, 0, None
    while step < work.steps:
        for idx in epoch_batches(sampler, epoch, work.batch_size):
            if first_step is None:
                first_step = time.time()
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            optimizer.step()
            samples += len(idx) * hvd.size()
            step += 1
            if step >= work.steps:
                break
        epoch += 1
    end = time.time()
    if hvd.rank() == 0:
        write_summary(args.out, samples, first_step, end, hvd.size(), {"loss": float(loss)})


if __name__ == "__main__":
    main()
