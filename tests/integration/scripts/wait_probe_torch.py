"""A plain Horovod script that reports whose synchronize wait its ranks use, after a checked allreduce."""
import sys

import horovod.torch as hvd
import torch

hvd.init()
total = hvd.allreduce(torch.tensor([float(hvd.rank() + 1)]), op=hvd.Sum).item()
wait = sys.modules["horovod.torch.mpi_lib_v2"].horovod_torch_wait_and_clear
owner = "hvdjob" if getattr(wait, "_hvdjob_sleeping_wait", False) else "horovod"
print(f"rank={hvd.rank()} sum={total} wait={owner}", flush=True)
