"""A PyTorch script that uses hvdjob's script-mode helpers instead of repeating Horovod set-up.

``torch_setup`` initialises Horovod, wraps the optimizer, broadcasts rank 0's starting state and
returns a DistributedSampler; ``scaled_lr`` applies the usual learning-rate scaling rule.
"""
import argparse

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

from hvdrun_cli.adapters import scaled_lr, torch_setup


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=42)
    return parser.parse_args()


def main():
    args = parse_args()
    torch.manual_seed(args.seed)
    x, y = load_digits(return_X_y=True)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(args.seed))
    x, y = torch.tensor(x / 16.0, dtype=torch.float32)[order], torch.tensor(y)[order]
    n_val = len(x) // 5
    train_set, x_val, y_val = TensorDataset(x[n_val:], y[n_val:]), x[:n_val], y[:n_val]

    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    # The world size is known only after Horovod starts; the rate is set again below.
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    hvd, model, optimizer, sampler = torch_setup(model, optimizer, train_set, seed=args.seed)
    for group in optimizer.param_groups:
        group["lr"] = scaled_lr(args.lr, "linear", hvd.size())
    loader = DataLoader(train_set, batch_size=args.batch_size, sampler=sampler)

    for epoch in range(args.epochs):
        model.train()
        sampler.set_epoch(epoch)
        for xb, yb in loader:
            optimizer.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            mine = slice(hvd.rank(), None, hvd.size())  # each rank scores its own slice
            correct = (model(x_val[mine]).argmax(dim=1) == y_val[mine]).sum()
            correct = hvd.allreduce(correct.float(), op=hvd.Sum, name="correct").item()
        if hvd.rank() == 0:
            print(f"epoch {epoch + 1}: val accuracy {correct / len(y_val):.4f}", flush=True)


if __name__ == "__main__":
    main()
