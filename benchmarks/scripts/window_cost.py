"""What recording one batch for the managed loop's metric window costs right after a training step.

Small tensor operations cost far more after a step (which sweeps the caches) than in a warm loop, so
the window is timed where the managed loop runs it: after each step of the benchmark MLP, one way per
step in turn (nothing, hvdjob's WindowSums, the per-batch sums a hand-written loop would do), all in
one process. Pin it to one core:

    taskset -c 1 python benchmarks/scripts/window_cost.py [--steps 8000]
"""
import argparse
import time

import torch

from hvdrun_cli.adapters.torch_metrics import WindowSums


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 256),
                                torch.nn.ReLU(), torch.nn.Linear(256, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(8192, 784), torch.randint(0, 10, (8192,))
    window = WindowSums(torch.device("cpu"))
    eager = [torch.zeros((), dtype=torch.float64), torch.zeros((), dtype=torch.float64)]

    def per_batch_sums(loss: torch.Tensor, out: torch.Tensor, labels: torch.Tensor) -> None:
        eager[0].add_(loss.detach() * len(labels))
        eager[1].add_((out.detach().argmax(dim=1) == labels).sum())

    ways = {"nothing": lambda loss, out, labels: None, "WindowSums.add": window.add,
            "per-batch sums": per_batch_sums}
    names = list(ways)
    spent = {name: [0, 0] for name in names}
    for step in range(args.steps):
        idx = torch.randint(0, len(x), (args.batch,))
        xb, yb = x[idx], y[idx]
        optimizer.zero_grad()
        out = model(xb)
        loss = torch.nn.functional.cross_entropy(out, yb)
        loss.backward()
        optimizer.step()
        name = names[step % len(names)]
        started = time.perf_counter_ns()
        ways[name](loss, out, yb)
        if step >= 400:  # past warm-up
            spent[name][0] += time.perf_counter_ns() - started
            spent[name][1] += 1
    base = spent["nothing"][0] / spent["nothing"][1]
    for name in names:
        ns = spent[name][0] / spent[name][1]
        print(f"{name:>16}: {ns / 1e3:6.1f} µs a batch after a step ({(ns - base) / 1e3:+.1f} µs over nothing)")


if __name__ == "__main__":
    main()
