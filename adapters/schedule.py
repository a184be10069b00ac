"""Learning-rate scaling and warmup as pure functions of (world size, global step).

A function of the global step (not of wall time or call count) gives a resumed run exactly the
rates the uninterrupted run would have used. Warmup follows Horovod's
``LearningRateWarmupCallback``: linear from ``scaled_lr / size`` to ``scaled_lr``, so PyTorch and
Keras jobs with the same spec see the same rates.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from hvdrun_cli.errors import Problem, UserInputError
from hvdrun_cli.spec.model import LR_SCALINGS


def scaled_lr(lr: float, rule: str, size: int) -> float:
    """Scale the one-rank rate for ``size`` ranks: the global batch is ``size`` times larger."""
    if rule == "none":
        return lr
    if rule == "linear":
        return lr * size
    if rule == "sqrt":
        return lr * math.sqrt(size)
    raise UserInputError(Problem(f"must be one of {', '.join(LR_SCALINGS)}", key="train.lr_scaling", got=rule))


@dataclass(frozen=True)
class LrSchedule:
    """Per-step learning rate: warmup over ``warmup_steps``, then constant ``peak``."""

    peak: float
    size: int
    warmup_steps: int = 0

    def at(self, step: int) -> float:
        """Rate for optimizer step ``step`` (0-based), matching Horovod's warmup multiplier."""
        if self.warmup_steps <= 0 or self.size <= 1:
            return self.peak
        progress = min(1.0, (step + 1) / self.warmup_steps)
        return self.peak * (1.0 / self.size + progress * (1.0 - 1.0 / self.size))


def make_schedule(lr: float, rule: str, size: int, warmup_epochs: float, steps_per_epoch: int) -> LrSchedule:
    return LrSchedule(scaled_lr(lr, rule, size), size, int(round(warmup_epochs * steps_per_epoch)))
