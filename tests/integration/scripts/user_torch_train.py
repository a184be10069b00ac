"""A Horovod PyTorch training script as users write it: nothing from hvdjob, runs the same under horovodrun.

Each rank prints a checksum of its final weights, so a test can see that the ranks agree.
"""
import argparse

import horovod.torch as hvd
import torch
import torch.nn.functional as F


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--lr", type=float, default=0.1)
    args = parser.parse_args()

    hvd.init()
    torch.manual_seed(1234 + hvd.rank())  # different data per rank; the broadcast makes the weights equal
    x = torch.randn(256, 16)
    y = (x.sum(dim=1) > 0).long()
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
    optimizer = hvd.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=args.lr * hvd.size()),
                                         named_parameters=model.named_parameters())
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    hvd.broadcast_optimizer_state(optimizer, root_rank=0)
    for step in range(args.steps):
        batch = slice((step * 32) % 256, (step * 32) % 256 + 32)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x[batch]), y[batch])
        loss.backward()
        optimizer.step()
    checksum = sum(p.double().sum().item() for p in model.parameters())
    print(f"rank {hvd.rank()} of {hvd.size()}: steps {args.steps} loss {loss.item():.4f} checksum {checksum!r}",
          flush=True)


if __name__ == "__main__":
    main()
