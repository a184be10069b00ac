"""PyTorch model, optimizer and loss from the spec's names (built-ins or ``module:function``).

Custom references:
  * model ``module:function`` -> ``function(**model_args)`` returning an ``nn.Module``; it also gets
    ``input_shape`` and ``num_classes`` if its signature accepts them.
  * optimizer ``module:function`` -> ``function(params, lr=..., **optimizer_args)`` returning a
    ``torch.optim.Optimizer``.
  * loss ``module:function`` -> the loss itself, called as ``loss(outputs, targets)``.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Sequence, Tuple

import torch
from torch import nn

from hvdrun_cli.spec.model import JobSpec

from . import plugins
from .base import train_of
from .data import image_shape

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def mlp(input_shape: Tuple[int, ...], num_classes: int, hidden: Sequence[int] = (64,),
        dropout: float = 0.0) -> nn.Module:
    """Fully connected classifier: flatten, then ``hidden`` ReLU layers."""
    layers: list = [nn.Flatten()]
    width = int(math.prod(input_shape))
    for units in hidden:
        layers += [nn.Linear(width, int(units)), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(float(dropout)))
        width = int(units)
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


class _ToImage(nn.Module):
    """Reshape flat features to (C, H, W); digits arrive as 64 values = one 8x8 image."""

    def __init__(self, shape: Tuple[int, int, int]) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


def cnn(input_shape: Tuple[int, ...], num_classes: int, channels: Sequence[int] = (16, 32),
        hidden: int = 64) -> nn.Module:
    """Small conv net for tiny images (8x8 digits): 3x3 convs, one 2x2 pool, a dense head."""
    shape = image_shape(input_shape)
    layers: list = [_ToImage(shape)]
    in_ch = shape[0]
    for out_ch in channels:
        layers += [nn.Conv2d(in_ch, int(out_ch), 3, padding=1), nn.ReLU()]
        in_ch = int(out_ch)
    pooled = (max(1, shape[1] // 2), max(1, shape[2] // 2))
    layers += [nn.AdaptiveMaxPool2d(pooled), nn.Flatten(), nn.Linear(in_ch * pooled[0] * pooled[1], int(hidden)),
               nn.ReLU(), nn.Linear(int(hidden), num_classes)]
    return nn.Sequential(*layers)


MODELS: Dict[str, Tuple[Callable[..., nn.Module], Tuple[str, ...]]] = {
    "mlp": (mlp, ("hidden", "dropout")),
    "cnn": (cnn, ("channels", "hidden")),
}


def build_model(spec: JobSpec, input_shape: Tuple[int, ...], num_classes: Callable[[], int]) -> nn.Module:
    return plugins.build_model(spec, MODELS, nn.Module, "torch.nn.Module", input_shape, num_classes)


_OPTIMIZER_ARGS = {"sgd": ("nesterov", "dampening"), "adam": ("betas", "eps", "amsgrad"),
                   "adamw": ("betas", "eps", "amsgrad")}


def build_optimizer(spec: JobSpec, model: nn.Module, lr: float) -> torch.optim.Optimizer:
    train = train_of(spec)
    args = dict(train.optimizer_args)
    params = model.parameters()
    if plugins.is_reference(train.optimizer):
        fn = plugins.resolve(train.optimizer, "train.optimizer", spec)
        return plugins.call_checked(fn, (params,), {"lr": lr, **args}, "train.optimizer_args", train.optimizer)
    name = train.optimizer.lower()
    if name not in _OPTIMIZER_ARGS:
        raise plugins.unknown_builtin("train.optimizer", train.optimizer, tuple(_OPTIMIZER_ARGS))
    plugins.check_args("optimizer", name, args, _OPTIMIZER_ARGS[name])
    if "betas" in args:
        args["betas"] = tuple(args["betas"])
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=train.momentum, weight_decay=train.weight_decay, **args)
    cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    return cls(params, lr=lr, weight_decay=train.weight_decay, **args)


def _mse_on_classes(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """MSE against one-hot targets when labels are class indices."""
    if targets.dtype in (torch.int64, torch.int32) and outputs.dim() == 2:
        targets = nn.functional.one_hot(targets, outputs.shape[1]).to(outputs.dtype)
    return nn.functional.mse_loss(outputs, targets)


LOSSES: Dict[str, LossFn] = {"cross_entropy": nn.functional.cross_entropy, "mse": _mse_on_classes}


def build_loss(spec: JobSpec) -> LossFn:
    name = train_of(spec).loss
    if plugins.is_reference(name):
        return plugins.resolve(name, "train.loss", spec)
    if name not in LOSSES:
        raise plugins.unknown_builtin("train.loss", name, tuple(LOSSES))
    return LOSSES[name]
