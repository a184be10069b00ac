"""A plain Horovod script in which rank 1 stops calling collectives after a while and sleeps forever."""
import time

import horovod.torch as hvd
import torch

hvd.init()
for step in range(1, 10**9):
    hvd.allreduce(torch.ones(1), name="step")
    if step % 20 == 0:
        print(f"step {step}", flush=True)
    if hvd.rank() == 1 and step == 60:
        print("rank 1 stops calling collectives", flush=True)
        time.sleep(10**6)
    time.sleep(0.01)
