"""Plain Horovod script that stays in a loop of allreduces until stopped (for signal tests)."""
import time

import horovod.torch as hvd
import torch

hvd.init()
print(f"rank {hvd.rank()} ready", flush=True)
while True:
    hvd.allreduce(torch.ones(1))
    time.sleep(0.05)
