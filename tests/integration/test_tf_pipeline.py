"""The Keras loop's in-memory array pipeline: one iterator for the run yields each epoch's own batches."""
from __future__ import annotations

from typing import List

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from hvdrun_cli.adapters.backend import EpochPlan  # noqa: E402
from hvdrun_cli.adapters.base import RankContext  # noqa: E402
from hvdrun_cli.adapters.data import ArrayData  # noqa: E402
from hvdrun_cli.adapters.tf_data import ArrayTfPipeline  # noqa: E402

BATCH = 8


def _pipeline(rank: int = 1) -> ArrayTfPipeline:
    x = np.arange(50 * 3, dtype=np.float32).reshape(50, 3)  # row i holds 3i, 3i+1, 3i+2
    data = ArrayData(x, np.arange(50, dtype=np.int64), x[:4], np.arange(4, dtype=np.int64), num_classes=50)
    return ArrayTfPipeline(data, RankContext(rank, 2, rank, 2, "/tmp"), BATCH, seed=7)


def _labels(pipeline: ArrayTfPipeline, plan: EpochPlan) -> List[List[int]]:
    """Every batch of the epoch through the pipeline's own iterator (labels = sample ids)."""
    steps = pipeline.local_batches(plan)
    iterator = pipeline.open_epoch(plan)
    batches = []
    for _ in range(steps):
        x, y = next(iterator)
        assert np.array_equal(x.numpy()[:, 0], 3 * y.numpy())  # features and labels of the same rows
        batches.append(y.numpy().tolist())
    pipeline.close_epoch(iterator, steps)
    return batches


def _expected(plan: EpochPlan) -> List[List[int]]:
    """The same epoch through a fresh per-epoch dataset (the pipeline's reference order)."""
    return [y.numpy().tolist() for _, y in _pipeline().epoch_dataset(plan)]


def test_each_epoch_gets_its_own_order_with_the_short_last_batch_and_a_resume_offset() -> None:
    pipeline = _pipeline()
    plans = [EpochPlan(0), EpochPlan(1), EpochPlan(2, skip_batches=2), EpochPlan(3, indices=[5, 1, 44, 2, 9])]
    for plan in plans:
        assert _labels(pipeline, plan) == _expected(plan), plan
    got = _labels(pipeline, EpochPlan(0))
    assert [len(b) for b in got] == [8, 8, 8, 1]  # 25 samples of rank 1's shard, batches of 8
    assert sorted(sum(got, [])) == sorted(np.random.default_rng([7, 0]).permutation(50)[1::2].tolist())


def test_an_iterator_that_reads_ahead_is_caught_and_replaced_so_no_epoch_gets_a_stale_batch(monkeypatch) -> None:
    """As if a TensorFlow version buffered batches ahead despite the options: a prefetch behind the cursor."""
    original = ArrayTfPipeline._cursor_dataset
    monkeypatch.setattr(ArrayTfPipeline, "_cursor_dataset", lambda self: original(self).prefetch(1))
    pipeline = _pipeline()
    for epoch in range(3):
        assert _labels(pipeline, EpochPlan(epoch)) == _expected(EpochPlan(epoch)), epoch
