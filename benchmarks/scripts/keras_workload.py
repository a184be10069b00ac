"""What the two hand-written Keras loops share: model, optimizer, input pipeline and the step clock.

train_hvd_keras.py (Horovod) and train_mwms.py (MultiWorkerMirroredStrategy) build the same MLP
with hvdjob's own Keras builder, SGD with the managed job's lr (times the number of workers, as
the managed job's linear scaling does) and momentum, and read the same synthetic arrays through
the pipeline a user writes: ``from_tensor_slices``, this worker's shard, a seeded shuffle, batches of
``batch_size``, repeated, prefetched. Only the distribution layer differs between them.
"""
import os
import time
from typing import Any, Dict, List, Optional, Tuple

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tf.keras is tf_keras (Keras 2), as in hvdjob's ranks

import tensorflow as tf  # noqa: E402

from hvdrun_cli.bench.stats import rate_after  # noqa: E402
from workload import Workload  # noqa: E402


def model_and_optimizer(work: Workload, data: Any, workers: int) -> "tuple":
    """The managed job's MLP (hvdjob's builder) and its SGD; call inside a strategy's scope if any."""
    from hvdrun_cli.adapters.keras_build import mlp

    model = mlp(data.input_shape, data.num_classes, hidden=work.hidden)
    optimizer = tf.keras.optimizers.SGD(learning_rate=work.lr * workers, momentum=work.momentum)
    return model, optimizer


def loss() -> Any:
    return tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def train_dataset(data: Any, work: Workload, shards: int, index: int, batch_size: int) -> "tf.data.Dataset":
    """This worker's shard, reshuffled every epoch, in batches, repeated forever (fit counts the steps)."""
    shard_len = len(data.x_train) // shards
    ds = tf.data.Dataset.from_tensor_slices((data.x_train, data.y_train)).shard(shards, index)
    ds = ds.shuffle(shard_len, seed=work.seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size, drop_remainder=True).repeat().prefetch(tf.data.AUTOTUNE)


FIRST_STEPS = 5


class StepClock(tf.keras.callbacks.Callback):
    """When the first batch began (the managed loop's definition: Keras traces its step in that batch),
    and when each batch ended, for the rate after the first steps."""

    def __init__(self) -> None:
        super().__init__()
        self._supports_tf_logs = True  # reads no logs: no host copy per batch on its account
        self.first_step: Optional[float] = None
        self.marks: List[Tuple[int, float]] = []  # (steps done, unix time)

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        if self.first_step is None:
            self.first_step = time.time()

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self.marks.append((len(self.marks) + 1, time.time()))

    def extra(self, work: Workload, samples_per_step: int) -> Dict[str, Any]:
        """summary.json fields: samples/s after ``work.steady_from_step`` steps (None: too few steps)."""
        times = [self.first_step] + [t for _, t in self.marks] if self.first_step is not None else []
        first = [round(b - a, 4) for a, b in zip(times, times[1:FIRST_STEPS + 1])]
        extra: Dict[str, Any] = {"first_steps_s": first}  # where start-up ends: the first steps' durations
        if work.steady_from_step:
            extra.update(steady_from_step=work.steady_from_step,
                         steady_samples_per_sec=rate_after(self.marks, work.steady_from_step, samples_per_step))
        return extra


def set_threads(intra: int, inter: int) -> None:
    """Thread pools, before TensorFlow starts its runtime."""
    tf.config.threading.set_intra_op_parallelism_threads(intra)
    tf.config.threading.set_inter_op_parallelism_threads(inter)
