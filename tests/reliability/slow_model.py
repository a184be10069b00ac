"""A small MLP whose forward pass sleeps, so training lasts long enough to be interrupted.

The sleep changes timing only: weights, gradients and data order are those of the plain network.
"""
import math
import time

from torch import nn


class Sleepy(nn.Module):
    def __init__(self, inner: nn.Module, delay: float) -> None:
        super().__init__()
        self.inner = inner
        self.delay = delay

    def forward(self, x):  # type: ignore[no-untyped-def]
        time.sleep(self.delay)
        return self.inner(x)


def mlp(input_shape, num_classes, delay=0.02, hidden=32):  # type: ignore[no-untyped-def]
    width = int(math.prod(input_shape))
    return Sleepy(nn.Sequential(nn.Flatten(), nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)),
                  float(delay))
