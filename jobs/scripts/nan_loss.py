"""A model and a loss that together make the training loss NaN from the first step.

Used by ``jobs/nan-loss.yaml`` to show what ``hvdjob smoke`` catches: the loss is a softmax
cross-entropy written out by hand without subtracting the largest logit, and the model's logits
are large enough (a few thousand) that ``exp`` overflows to inf and inf / inf gives NaN. The same
bug hides in real code whenever logits grow during training; here it happens at once, so the
example is deterministic and quick.
"""
import math

import torch
from torch import nn


class _Scaled(nn.Module):
    def __init__(self, inner: nn.Module, scale: float) -> None:
        super().__init__()
        self.inner = inner
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x) * self.scale


def overconfident_linear(input_shape, num_classes, scale: float = 1000.0) -> nn.Module:
    """A linear classifier whose logits are multiplied by ``scale``."""
    return _Scaled(nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), num_classes)), scale)


def naive_cross_entropy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """-log(softmax) computed literally: exp(large logit) = inf, inf / inf = NaN."""
    exp = torch.exp(outputs)
    probs = exp / exp.sum(dim=1, keepdim=True)
    return -torch.log(probs.gather(1, targets[:, None])).mean()
