"""The metric window's sums for PyTorch, at almost no cost per batch.

What a batch costs here is not what its operations cost alone: after a training step has swept
the caches, each small tensor operation whose code the step did not just run takes 20-40 µs
(measured in a pinned process after each step of the benchmark MLP; 1-4 µs in a warm loop). So
a batch does as few kinds of operation as possible: one ``add_`` of its loss into the sum (the
optimizer's own operation) and two copies, of its class scores and labels, into buffers allocated
once. Every ``FOLD_EVERY`` batches, and when the window is read, one batched computation finds the
correct predictions. Nothing is copied to the host until the window is read, so a GPU step never
waits for it.

Measured that way (``benchmarks/scripts/window_cost.py`` alternates it with plain per-batch sums
after each step): 32-45 µs a batch against 57-78 µs (4 runs). Writing each batch's loss, argmax
and labels into indexed slots took twice as long as this. Keeping references to each batch's tensors until
the fold looked cheaper and was not: tensors kept alive between a step's large allocations change
how the C allocator reuses and trims its heap, and the ranks page-faulted 40-157 times a step
against 3-12 for a plain loop, 3-6% of a step.

Large outputs (many classes) keep each batch's predicted classes instead of its scores, so the
buffers stay small whatever the model.
"""
from __future__ import annotations

from typing import List, Optional

import torch

from .backend import Sums

FOLD_EVERY = 16  # batches written into the buffers before they are folded into the sums
SCORES_KEPT_AT_MOST = 1 << 16  # elements of one batch's class scores copied as they are; larger: argmax


class WindowSums:
    """Loss sum (per-sample), correct predictions and samples since the window was last read."""

    def __init__(self, device: torch.device) -> None:
        self._device = device
        self._loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self._correct = torch.zeros((), dtype=torch.float64, device=device)
        self._count = 0
        self._rows: List[int] = []  # per buffered batch, in slot order: its samples
        self._scores: Optional[torch.Tensor] = None  # (FOLD_EVERY, width, classes): small outputs
        self._predicted: Optional[torch.Tensor] = None  # (FOLD_EVERY, width): large outputs' argmax
        self._labels: Optional[torch.Tensor] = None  # (FOLD_EVERY, width)
        self._kept_slots: List[torch.Tensor] = []  # one view per slot of the scores or predictions
        self._label_slots: List[torch.Tensor] = []
        self._width = 0

    def add(self, loss: torch.Tensor, out: torch.Tensor, y: torch.Tensor) -> None:
        """One batch: ``loss`` is its mean loss; a correct count needs class scores and class labels."""
        n = int(y.shape[0])
        value = loss.detach()
        if value.dim():  # a user's loss of shape (1,)
            value = value.reshape(())
        self._loss_sum.add_(value, alpha=n)
        self._count += n
        if out.dim() != 2 or y.dim() != 1:
            return
        if y.is_floating_point():  # labels that are not class indices: compared as they are
            self._correct.add_((out.detach().argmax(dim=1) == y).sum())
            return
        self._keep(out.detach(), y, n)

    def take(self) -> Sums:
        """The window's sums as floats (one host copy each); the window starts again at zero."""
        self._fold()
        sums = (float(self._loss_sum), float(self._correct), float(self._count))
        self._loss_sum.zero_()
        self._correct.zero_()
        self._count = 0
        return sums

    def _keep(self, out: torch.Tensor, y: torch.Tensor, n: int) -> None:
        if not self._fits(out, n):
            self._fold()
            self._allocate(out, n)
        slot = len(self._rows)
        # Views made once per slot: indexing a buffer is itself a tensor operation.
        kept, labels = self._kept_slots[slot], self._label_slots[slot]
        if n != self._width:  # a short batch
            kept, labels = kept[:n], labels[:n]
        if self._scores is not None:
            kept.copy_(out)
        else:
            torch.argmax(out, dim=1, out=kept)
        labels.copy_(y)
        self._rows.append(n)
        if len(self._rows) >= FOLD_EVERY:
            self._fold()

    def _fits(self, out: torch.Tensor, n: int) -> bool:
        if self._labels is None or self._width < n:
            return False
        scores = self._scores  # predicted classes (None) take any scores
        return scores is None or (scores.shape[2] == out.shape[1] and scores.dtype == out.dtype)

    def _allocate(self, out: torch.Tensor, width: int) -> None:
        """Buffers for batches of up to ``width`` samples shaped like ``out`` (called when none is buffered)."""
        classes = out.shape[1]
        if width * classes <= SCORES_KEPT_AT_MOST:
            kept = torch.zeros(FOLD_EVERY, width, classes, dtype=out.dtype, device=self._device)
            self._scores, self._predicted = kept, None
        else:
            kept = torch.zeros(FOLD_EVERY, width, dtype=torch.int64, device=self._device)
            self._scores, self._predicted = None, kept
        self._labels = torch.zeros(FOLD_EVERY, width, dtype=torch.int64, device=self._device)
        self._kept_slots, self._label_slots = list(kept.unbind(0)), list(self._labels.unbind(0))
        self._width = width

    def _fold(self) -> None:
        rows = self._rows
        if not rows or self._labels is None:
            return
        batches, width = len(rows), self._width
        if self._scores is not None:
            predicted = self._scores[:batches].argmax(dim=2)
        else:
            assert self._predicted is not None
            predicted = self._predicted[:batches]
        if all(r == width for r in rows):
            self._correct.add_((predicted == self._labels[:batches]).sum())
        else:  # short batches: each slot's own rows
            for slot, r in enumerate(rows):
                self._correct.add_((predicted[slot, :r] == self._labels[slot, :r]).sum())
        self._rows = []
