"""Minimal Horovod start-up: init, a tiny model, broadcast, one optimizer step.

Rank 0 writes the unix time at which its first step began to the JSON file named by argv[1].
Knows nothing of hvdjob: run by both ``hvdjob run`` (script mode) and bare ``horovodrun``.
"""
import json
import sys
import time

import horovod.torch as hvd
import torch


def main(out_path: str) -> None:
    hvd.init()
    model = torch.nn.Linear(32, 10)
    optimizer = hvd.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.01),
                                         named_parameters=model.named_parameters())
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    x, y = torch.randn(16, 32), torch.randint(0, 10, (16,))
    first_step = time.time()
    optimizer.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
    if hvd.rank() == 0:
        with open(out_path, "w", encoding="utf-8") as fh:
            json.dump({"first_step_unix_time": first_step, "size": hvd.size()}, fh)


if __name__ == "__main__":
    main(sys.argv[1])
