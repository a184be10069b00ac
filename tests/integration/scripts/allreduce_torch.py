"""A plain Horovod PyTorch script (knows nothing of hvdjob): allreduce + one DistributedOptimizer step."""
import hashlib
import sys

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
print(f"rank={hvd.rank()} size={hvd.size()} local_rank={hvd.local_rank()} sum={total} params={digest}", flush=True)
if len(sys.argv) > 1 and sys.argv[1] == "--fail-rank" and hvd.rank() == int(sys.argv[2]):
    print("this rank fails on purpose", flush=True)
    sys.exit(3)
