"""Proof that Horovod's PyTorch extension works: allreduce and one DistributedOptimizer step.

Prints one JSON line per rank: the allreduce sum and a digest of the weights after the step.
"""
import hashlib
import json

import horovod.torch as hvd
import torch

hvd.init()
summed = hvd.allreduce(torch.tensor([float(hvd.rank() + 1), 10.0]), op=hvd.Sum).tolist()
torch.manual_seed(100 + hvd.rank())  # ranks start different; broadcast must make them equal
model = torch.nn.Linear(3, 1)
optimizer = hvd.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.5),
                                     named_parameters=model.named_parameters())
hvd.broadcast_parameters(model.state_dict(), root_rank=0)
x = torch.full((4, 3), float(hvd.rank() + 1))
loss = model(x).sum()
optimizer.zero_grad()
loss.backward()
optimizer.step()
weights = torch.cat([p.detach().flatten() for p in model.parameters()])
print(json.dumps({
    "rank": hvd.rank(), "size": hvd.size(), "sum": summed,
    "weights": hashlib.sha256(weights.numpy().tobytes()).hexdigest(),
    "grad_w": model.weight.grad.tolist(),
}), flush=True)
