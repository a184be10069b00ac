"""A plain Horovod PyTorch script that reports where each rank runs, then checks a DistributedOptimizer step.

Prints one line per rank: its place in the world, local and cross communicators, the host it ran on
(hostname and the addresses of its interfaces), the allreduced sum and a digest of the parameters
after one step (identical on every rank when gradients were averaged and the broadcast worked),
and the CPUs it may run on.
"""
import hashlib
import os
import socket

import horovod.torch as hvd
import torch

hvd.init()
torch.manual_seed(1234 + hvd.rank())  # different init on purpose: the broadcast must fix it
total = hvd.allreduce(torch.tensor([float(hvd.rank() + 1)]), op=hvd.Sum).item()
model = torch.nn.Linear(4, 2)
opt = hvd.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), named_parameters=model.named_parameters())
hvd.broadcast_parameters(model.state_dict(), root_rank=0)
x = torch.randn(8, 4) * (hvd.rank() + 1)
loss = model(x).pow(2).mean()
opt.zero_grad()
loss.backward()
opt.step()
digest = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in model.parameters())).hexdigest()[:16]
print(
    f"rank={hvd.rank()} size={hvd.size()} local_rank={hvd.local_rank()} local_size={hvd.local_size()} "
    f"cross_rank={hvd.cross_rank()} cross_size={hvd.cross_size()} host={socket.gethostname()} "
    f"sum={total} params={digest} cpus={','.join(map(str, sorted(os.sched_getaffinity(0))))}",
    flush=True,
)
