"""TensorFlow input pipelines: arrays, or the user's unbatched ``tf.data.Dataset`` of (features, label).

``train.data`` may return arrays (see :mod:`.data`) or ``(train, val)`` unbatched ``tf.data``
datasets. hvdjob shards them over the ranks (``shard(size, rank)``), shuffles the training shard
with a seed that depends on the epoch (so an epoch's order is the same after a resume), batches
them with ``train.batch_size`` and prefetches. ``shard`` gives ranks counts that can differ by one
sample, so batch counts may differ; the engine handles that with Horovod's ``join``.

A ``tf.data`` pipeline has no random access: a resume in the middle of an epoch skips the batches
this rank had finished with ``skip``, which reads them through the pipeline (without training on
them). Arrays take an index path instead: the epoch order is a seeded permutation of indices and a
resume skips indices, so finished samples are never read.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np
import tensorflow as tf

from hvdrun_cli.errors import Problem, UserInputError
from hvdrun_cli.spec.model import JobSpec

from .background import DaemonWorker
from .backend import DataFacts, EpochPlan
from .base import RankContext, train_of
from .data import ArrayData, load_data, wrong_data

ACCEPTED = ("arrays (x_train, y_train, x_val, y_val), ArrayData, or (train, val) unbatched tf.data.Datasets "
            "of (features, label) elements")
SHUFFLE_BUFFER = 10_000  # tf.data shuffle buffer when the shard's length is unknown or larger
AUTOTUNE = tf.data.AUTOTUNE
_REAPER = DaemonWorker("hvdjob-iterator-reaper")  # finished iterators are destroyed there (background.py)


def _cardinality(ds: "tf.data.Dataset") -> Optional[int]:
    """Elements of ``ds`` when TensorFlow knows them in advance, else None; infinite is an input error."""
    n = int(tf.data.experimental.cardinality(ds).numpy())
    if n == int(tf.data.experimental.INFINITE_CARDINALITY):
        raise UserInputError(Problem("the training tf.data.Dataset repeats forever; return one epoch of data "
                                     "(hvdjob repeats it train.epochs times)", key="train.data"))
    return None if n < 0 else n


class TfPipeline:
    facts: DataFacts
    input_shape: Tuple[int, ...]

    def num_classes(self) -> int:
        raise NotImplementedError

    def epoch_dataset(self, plan: EpochPlan) -> "tf.data.Dataset":
        raise NotImplementedError

    def open_epoch(self, plan: EpochPlan) -> Any:
        """An iterator over this rank's batches of the epoch; give it to :meth:`close_epoch` afterwards."""
        return iter(self.epoch_dataset(plan))

    def close_epoch(self, iterator: Any, batches_used: int) -> None:
        """Done with ``iterator`` after ``batches_used`` batches (the caller drops its own reference)."""
        _REAPER.release(iterator)

    def local_batches(self, plan: EpochPlan) -> Optional[int]:
        raise NotImplementedError

    def val_dataset(self) -> Optional["tf.data.Dataset"]:
        raise NotImplementedError

    def update_world(self, ctx: RankContext) -> None:
        self.ctx = ctx


class ArrayTfPipeline(TfPipeline):
    """In-memory arrays through an index dataset: order by seed and epoch, padded to equal shards."""

    def __init__(self, data: ArrayData, ctx: RankContext, batch_size: int, seed: int) -> None:
        self.data, self.ctx, self.batch_size, self.seed = data, ctx, batch_size, seed
        # Variables, not constants: each epoch's pipeline captures them by handle. A captured constant
        # is copied into every new iterator (measured: 0.19-0.24 s per epoch for 60,000 x 784 floats,
        # against 0.03 s with variables). tf.data runs on the CPU, so the arrays stay there.
        with tf.device("/cpu:0"):
            self.x_train = tf.Variable(data.x_train, trainable=False, name="hvdjob_x_train")
            self.y_train = tf.Variable(data.y_train, trainable=False, name="hvdjob_y_train")
            self._order = tf.Variable(np.zeros(0, np.int64), shape=tf.TensorShape([None]), trainable=False,
                                      name="hvdjob_epoch_order")
            self._cursor = tf.Variable(0, dtype=tf.int64, trainable=False, name="hvdjob_epoch_cursor")
        self._persistent: Any = None
        self._cursor_ok = True  # False once the persistent iterator was caught reading ahead
        self._expected_cursor = 0
        self.facts = DataFacts(len(data.x_train), True, "arrays", equal_shards=True)
        self.input_shape = data.input_shape

    def num_classes(self) -> int:
        return self.data.num_classes

    def _indices(self, plan: EpochPlan) -> np.ndarray:
        if plan.indices is not None:
            return np.asarray(plan.indices, dtype=np.int64)
        n, size = len(self.data.x_train), self.ctx.size
        shard_len = -(-n // size)
        order = np.random.default_rng([self.seed, plan.epoch]).permutation(n)
        order = np.concatenate([order, order[: shard_len * size - n]])  # pad like DistributedSampler
        return order[self.ctx.rank::size][plan.skip_batches * self.batch_size:]

    def epoch_dataset(self, plan: EpochPlan) -> "tf.data.Dataset":
        ds = tf.data.Dataset.from_tensor_slices(self._indices(plan)).batch(self.batch_size)
        ds = ds.map(lambda idx: (tf.gather(self.x_train, idx), tf.gather(self.y_train, idx)))
        return ds.prefetch(2)

    def open_epoch(self, plan: EpochPlan) -> Any:
        """One iterator for the whole run: each epoch only loads its order into a variable.

        Making an iterator costs 30-40 ms here (a quarter of a second per epoch with a captured
        constant), which was 4% of an epoch of the benchmark job. The batch a persistent iterator
        yields is cut from the order variable when it is asked for, so it must not read ahead into
        an order not loaded yet: its options switch off what could (prefetch injection, autotuning,
        parallel maps), and the cursor proves it: if it moved past the batches used, the iterator
        read ahead, and epochs go back to an iterator each.
        """
        if not self._cursor_ok:
            return super().open_epoch(plan)
        if self._persistent is not None and int(self._cursor.numpy()) != self._expected_cursor:
            self._cursor_ok = False
            _REAPER.release(self._persistent)
            self._persistent = None
            return super().open_epoch(plan)
        self._order.assign(self._indices(plan))
        self._cursor.assign(0)
        if self._persistent is None:
            self._persistent = iter(self._cursor_dataset())
        return self._persistent

    def close_epoch(self, iterator: Any, batches_used: int) -> None:
        if iterator is not self._persistent:
            super().close_epoch(iterator, batches_used)
        self._expected_cursor = batches_used * self.batch_size

    def _cursor_dataset(self) -> "tf.data.Dataset":
        batch = self.batch_size

        def next_batch(_: Any) -> Tuple[Any, Any]:
            start = self._cursor.assign_add(batch) - batch
            idx = self._order[start:start + batch]
            return tf.gather(self.x_train, idx), tf.gather(self.y_train, idx)

        options = tf.data.Options()
        options.autotune.enabled = False
        options.experimental_optimization.inject_prefetch = False
        options.experimental_optimization.map_parallelization = False
        ds = tf.data.Dataset.from_tensors(tf.constant(0, tf.int64)).repeat().map(next_batch)
        return ds.with_options(options)

    def local_batches(self, plan: EpochPlan) -> Optional[int]:
        return -(-len(self._indices(plan)) // self.batch_size)

    def val_dataset(self) -> Optional["tf.data.Dataset"]:
        x = self.data.x_val[self.ctx.rank::self.ctx.size]
        y = self.data.y_val[self.ctx.rank::self.ctx.size]
        if not len(x):
            return None
        return tf.data.Dataset.from_tensor_slices((x, y)).batch(4 * self.batch_size)


class DatasetTfPipeline(TfPipeline):
    """The user's unbatched ``tf.data`` datasets, sharded, shuffled and batched by hvdjob."""

    def __init__(self, train: "tf.data.Dataset", val: Optional["tf.data.Dataset"], ctx: RankContext,
                 batch_size: int, seed: int) -> None:
        self.train, self.val, self.ctx, self.batch_size, self.seed = train, val, ctx, batch_size, seed
        self.input_shape = _features_shape(train, "training")
        if val is not None:
            _features_shape(val, "validation")
        self.facts = DataFacts(_cardinality(train), False, "tf.data")

    def num_classes(self) -> int:
        """One pass over the labels (only when the model needs it and model_args.num_classes is not set)."""
        labels = self.train.map(lambda x, y: tf.reduce_max(tf.cast(y, tf.int64)))
        return int(labels.reduce(tf.constant(-1, tf.int64), tf.maximum).numpy()) + 1

    def _shard(self) -> "tf.data.Dataset":
        return self.train.shard(self.ctx.size, self.ctx.rank)

    def epoch_dataset(self, plan: EpochPlan) -> "tf.data.Dataset":
        ds = self._shard()
        n = _cardinality(ds)
        buffer = SHUFFLE_BUFFER if n is None else max(1, min(n, SHUFFLE_BUFFER))
        ds = ds.shuffle(buffer, seed=self.seed * 1000003 + plan.epoch, reshuffle_each_iteration=False)
        ds = ds.batch(self.batch_size)
        if plan.skip_batches:
            ds = ds.skip(plan.skip_batches)  # reads them: a tf.data pipeline cannot seek
        return ds.prefetch(AUTOTUNE)

    def local_batches(self, plan: EpochPlan) -> Optional[int]:
        n = _cardinality(self._shard())
        return None if n is None else max(0, -(-n // self.batch_size) - plan.skip_batches)

    def val_dataset(self) -> Optional["tf.data.Dataset"]:
        if self.val is None:
            return None
        return self.val.shard(self.ctx.size, self.ctx.rank).batch(4 * self.batch_size)


def _features_shape(ds: "tf.data.Dataset", which: str) -> Tuple[int, ...]:
    """Input shape from the element spec; a batched or non-(features, label) dataset is an input error."""
    spec = ds.element_spec
    if not isinstance(spec, tuple) or len(spec) != 2:
        raise UserInputError(Problem(f"the {which} tf.data.Dataset must yield (features, label) pairs",
                                     key="train.data", got=str(spec)))
    shape = spec[0].shape
    if shape.rank is None or not shape.is_fully_defined():
        raise UserInputError(Problem(f"the {which} tf.data.Dataset looks batched or has features of unknown "
                                     "shape; return it unbatched (hvdjob shards and batches it)",
                                     key="train.data", got=str(shape)))
    return tuple(int(d) for d in shape)


def tf_pipeline_for(spec: JobSpec, ctx: RankContext) -> TfPipeline:
    """Load ``train.data`` and wrap it in the pipeline for what it returned."""
    train = train_of(spec)
    value = load_data(spec)
    if isinstance(value, ArrayData):
        return ArrayTfPipeline(value, ctx, train.batch_size, train.seed)
    if isinstance(value, tf.data.Dataset):
        value = (value, None)
    if (isinstance(value, (tuple, list)) and len(value) == 2 and isinstance(value[0], tf.data.Dataset)
            and (value[1] is None or isinstance(value[1], tf.data.Dataset))):
        return DatasetTfPipeline(value[0], value[1], ctx, train.batch_size, train.seed)
    raise wrong_data(value, ACCEPTED)

