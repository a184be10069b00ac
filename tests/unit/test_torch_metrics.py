"""The PyTorch metric window: sums folded in batches equal the sums taken batch by batch."""
from __future__ import annotations

from typing import List, Tuple

import pytest

torch = pytest.importorskip("torch")

from hvdrun_cli.adapters.torch_metrics import FOLD_EVERY, SCORES_KEPT_AT_MOST, WindowSums  # noqa: E402


def _batches(sizes: List[int], classes: int, dtype: "torch.dtype" = torch.float32) -> List[Tuple]:
    generator = torch.Generator().manual_seed(7)
    out = []
    for n in sizes:
        scores = torch.randn(n, classes, generator=generator).to(dtype)
        labels = torch.randint(0, classes, (n,), generator=generator)
        loss = torch.nn.functional.cross_entropy(scores.float(), labels)
        out.append((loss, scores, labels))
    return out


def _eager(batches: List[Tuple]) -> Tuple[float, float, float]:
    loss_sum = sum(float(loss) * len(y) for loss, _, y in batches)
    correct = sum(float((out.argmax(dim=1) == y).sum()) for _, out, y in batches)
    return loss_sum, correct, float(sum(len(y) for _, _, y in batches))


@pytest.mark.parametrize("sizes", [
    [8] * (3 * FOLD_EVERY + 5),             # several folds and a partial one
    [8] * (FOLD_EVERY - 1) + [3],           # a short last batch weighs what it holds
    [1],
])
def test_folded_sums_equal_the_per_batch_sums(sizes: List[int]) -> None:
    batches = _batches(sizes, classes=5)
    window = WindowSums(torch.device("cpu"))
    for loss, out, y in batches:
        window.add(loss, out, y)
    assert window.take() == pytest.approx(_eager(batches))
    assert window.take() == (0.0, 0.0, 0.0)  # read once: the next window starts at zero


def test_windows_split_anywhere_add_up_to_the_whole() -> None:
    batches = _batches([4] * 40, classes=3)
    window = WindowSums(torch.device("cpu"))
    totals = [0.0, 0.0, 0.0]
    for i, (loss, out, y) in enumerate(batches):
        window.add(loss, out, y)
        if i % 7 == 6:
            totals = [a + b for a, b in zip(totals, window.take())]
    totals = [a + b for a, b in zip(totals, window.take())]
    assert totals == pytest.approx(list(_eager(batches)))


def test_bfloat16_scores_and_non_class_outputs() -> None:
    batches = _batches([6] * 20, classes=4, dtype=torch.bfloat16)
    window = WindowSums(torch.device("cpu"))
    for loss, out, y in batches:
        window.add(loss, out, y)
    regression_loss = torch.tensor([2.0])  # a user's loss may come as shape (1,)
    window.add(regression_loss, torch.randn(6, 1, 3), torch.randn(6, 3))  # not class scores: no correct count
    loss_sum, correct, count = _eager(batches)
    assert window.take() == pytest.approx((loss_sum + 2.0 * 6, correct, count + 6))


def test_batches_wider_than_the_first_and_float_labels_are_counted() -> None:
    batches = _batches([3, 8, 8, 2, 8], classes=4)  # the first batch is short: the buffers grow later
    window = WindowSums(torch.device("cpu"))
    for loss, out, y in batches:
        window.add(loss, out, y)
    scores = torch.tensor([[0.1, 0.9], [0.8, 0.2]])
    window.add(torch.tensor(1.0), scores, torch.tensor([1.0, 1.0]))  # float labels, compared as they are
    loss_sum, correct, count = _eager(batches)
    assert window.take() == pytest.approx((loss_sum + 2.0, correct + 1, count + 2))


@pytest.mark.parametrize("classes", [7, SCORES_KEPT_AT_MOST // 8 + 1])  # scores kept / predictions kept
def test_classes_changing_between_batches_and_large_outputs(classes: int) -> None:
    batches = _batches([8] * (FOLD_EVERY + 3), classes=classes) + _batches([8] * 5, classes=3)
    batches += _batches([5, 8], classes=classes)
    window = WindowSums(torch.device("cpu"))
    for loss, out, y in batches:
        window.add(loss, out, y)
    assert window.take() == pytest.approx(_eager(batches))


def test_no_batch_tensor_outlives_its_step() -> None:
    """Tensors kept from step to step fragment the allocator's heap (page faults every step)."""
    import gc
    import weakref

    weight = torch.randn(3, 5, requires_grad=True)
    window = WindowSums(torch.device("cpu"))
    refs = []
    for _ in range(3):
        out = torch.randn(4, 3) @ weight
        y = torch.randint(0, 5, (4,))
        loss = torch.nn.functional.cross_entropy(out, y)
        window.add(loss, out, y)
        refs += [weakref.ref(out), weakref.ref(y), weakref.ref(loss)]
        del out, y, loss
    gc.collect()
    assert all(ref() is None for ref in refs)
    assert window.take()[2] == 12
