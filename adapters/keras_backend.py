"""TensorFlow behind the engine: Keras ``fit`` (tf_keras) with Horovod's ``DistributedOptimizer``.

Each epoch drives the model's own compiled step, ``model.make_train_function()`` (what ``fit`` calls
per batch, so a custom ``train_step`` is honoured), one batch per call, with the engine around every
call. ``fit`` itself is not used: calling it once per epoch cost its set-up (data handler, callback
list, history) every epoch, measured as 0.83x of a hand-written single-``fit`` loop after warm-up.
For Keras a "step" is one batch; with ``backward_passes_per_step`` > 1 Horovod applies the optimizer
every that many batches, and a resume in the middle of such a group loses the partial gradient sum.
Nothing is copied to the host per batch: the metric window reads Keras's running means (reset at each
epoch start, as ``fit`` does) once per log interval.
Horovod's own callbacks are not used: the engine broadcasts the start state, averages metrics and
sets the learning rate (warmup included) itself, and an epoch-end metric allreduce would wait forever
on ranks that still train when data is uneven.
"""
from __future__ import annotations

from typing import Any, BinaryIO, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import horovod.tensorflow as hvd_tf
import horovod.tensorflow.keras as hvd
import tensorflow as tf

from hvdrun_cli.spec.model import JobSpec

from . import keras_state
from .backend import Backend, DataFacts, EpochPlan, Loaded, StepDriver, Sums
from .base import LaunchInfo, RankContext, train_of
from .checkpoint import Checkpoint
from .collective import check_reduction
from .keras_build import build_loss, build_model, build_optimizer
from .tf_data import TfPipeline, tf_pipeline_for

keras = tf.keras
REDUCE_OPS = {"average": hvd.Average, "sum": hvd.Sum, "adasum": hvd_tf.Adasum}
COMPRESSIONS = {"none": hvd.Compression.none, "fp16": hvd.Compression.fp16}
ALLREDUCE_OPS = {"sum": hvd_tf.Sum, "max": hvd_tf.Max}


class SampleCount(keras.metrics.Sum):
    """Samples seen since the metrics were last reset: turns Keras's running means back into sums."""

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        return super().update_state(tf.cast(tf.shape(y_true)[0], self.dtype))


class _ElasticKerasState(hvd.elastic.KerasState):
    """Horovod's ``KerasState`` for Keras 2.11+ optimizers, whose ``variables`` is a property.

    Horovod 0.28 calls ``optimizer.variables()``; everything else is Horovod's own behaviour.
    """

    def __init__(self, model: Any, optimizer: Any, **kwargs: Any) -> None:
        super().__init__(model, optimizer=optimizer, **kwargs)
        self._bcast_model = self._broadcast_variables

    def _broadcast_variables(self) -> None:
        hvd_tf.broadcast_variables(self.model.variables, root_rank=0)
        hvd_tf.broadcast_variables(keras_state.optimizer_variables(self.optimizer), root_rank=0)

    def _save_model(self) -> None:
        self._saved_model_state = [tf.identity(v) for v in self.model.variables]
        self._saved_optimizer_state = [tf.identity(v) for v in keras_state.optimizer_variables(self.optimizer)]

    def _load_model(self) -> None:
        for variable, saved in zip(self.model.variables, self._saved_model_state):
            variable.assign(saved)
        for variable, saved in zip(keras_state.optimizer_variables(self.optimizer), self._saved_optimizer_state):
            variable.assign(saved)


class KerasBackend(Backend):
    framework = "tensorflow"
    checkpoint_suffix = ".npz"

    def init(self, launch: LaunchInfo) -> RankContext:
        tf.config.threading.set_intra_op_parallelism_threads(launch.threads)
        tf.config.threading.set_inter_op_parallelism_threads(max(2, launch.threads))
        hvd.init()
        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            for gpu in gpus:
                tf.config.experimental.set_memory_growth(gpu, True)
            tf.config.set_visible_devices(gpus[hvd.local_rank() % len(gpus)], "GPU")
        return RankContext(hvd.rank(), hvd.size(), hvd.local_rank(), hvd.local_size(), launch.run_dir,
                           launch.attempt)

    def build(self, spec: JobSpec, ctx: RankContext, lr: float) -> DataFacts:
        train = self.train = train_of(spec)
        keras.utils.set_random_seed(train.seed)  # same initial weights on every rank
        if train.deterministic:
            tf.config.experimental.enable_op_determinism()
        self.pipeline: TfPipeline = tf_pipeline_for(spec, ctx)
        if train.mixed_precision:
            keras.mixed_precision.set_global_policy("mixed_bfloat16")
        self.model = build_model(spec, self.pipeline.input_shape, self.pipeline.num_classes)
        hv = spec.horovod
        check_reduction(hv.reduction, hvd_tf.mpi_enabled())
        self.optimizer = hvd.DistributedOptimizer(
            build_optimizer(spec, lr),
            compression=COMPRESSIONS[hv.compression],
            op=REDUCE_OPS[hv.reduction],
            backward_passes_per_step=max(1, hv.backward_passes_per_step),
            average_aggregated_gradients=True,  # like the PyTorch side: the mean over the step's batches
            gradient_predivide_factor=hv.gradient_predivide_factor,
        )
        self.model.compile(optimizer=self.optimizer, loss=build_loss(spec),
                           metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                                    SampleCount(name="samples")])
        # Create the optimizer's slots now, so a checkpoint can fill them and rank 0 can broadcast them.
        self.optimizer.build(self.model.trainable_variables)
        self.logs: Optional[Mapping[str, Any]] = None
        self._lr: Optional[float] = None
        self.batches_done = 0
        self._mark = (0.0, 0.0, 0.0)
        return self.pipeline.facts

    def local_batches(self, plan: EpochPlan) -> Optional[int]:
        return self.pipeline.local_batches(plan)

    def update_world(self, ctx: RankContext) -> None:
        self.pipeline.update_world(ctx)

    # ----- training -------------------------------------------------------------------------------

    def run_epoch(self, plan: EpochPlan, driver: StepDriver) -> None:
        steps = self.pipeline.local_batches(plan)
        if steps is not None and plan.max_steps is not None:
            steps = min(steps, plan.max_steps)
        if steps == 0:
            return
        model = self.model
        train_function = model.make_train_function()
        model.reset_metrics()
        self.logs, self._mark = None, (0.0, 0.0, 0.0)
        iterator = self.pipeline.open_epoch(plan)
        started_at = self.batches_done
        try:
            self._train_batches(train_function, iterator, steps, driver)
        finally:
            self.pipeline.close_epoch(iterator, self.batches_done - started_at)
            del iterator

    def _train_batches(self, train_function: Callable[[Any], Any], iterator: Any, steps: Optional[int],
                       driver: StepDriver) -> None:
        """Train until the epoch's batches are done or the driver says stop."""
        done = 0
        while steps is None or done < steps:
            lr = driver.begin_step()
            if lr != self._lr:
                keras.backend.set_value(self.optimizer.learning_rate, lr)
                self._lr = lr
            try:
                self.logs = train_function(iterator)
            except tf.errors.OutOfRangeError:
                return  # data of unknown length ran out: the epoch is over
            done += 1
            self.batches_done += 1
            if not driver.end_step():
                return

    def take_window(self) -> Sums:
        """Keras logs running means over the fit call; turn them into this window's sums."""
        logs = self.logs
        if not logs:
            return 0.0, 0.0, 0.0
        count = float(logs["samples"])
        loss_sum, correct = float(logs["loss"]) * count, float(logs["accuracy"]) * count
        mark, self._mark = self._mark, (loss_sum, correct, count)
        return loss_sum - mark[0], correct - mark[1], count - mark[2]

    def validate(self) -> Sums:
        ds = self.pipeline.val_dataset()
        if ds is None or int(tf.data.experimental.cardinality(ds).numpy()) == 0:
            return 0.0, 0.0, 0.0
        result = self.model.evaluate(ds, verbose=0, return_dict=True)
        count = float(result["samples"])
        return float(result["loss"]) * count, float(result["accuracy"]) * count, count

    # ----- collectives ----------------------------------------------------------------------------

    def allreduce(self, values: Sequence[float], op: str, name: str) -> List[float]:
        tensor = tf.constant(list(values), dtype=tf.float64)
        return hvd_tf.allreduce(tensor, op=ALLREDUCE_OPS[op], name=name).numpy().tolist()

    # The stop check stays synchronous here. TensorFlow has no eager asynchronous allreduce, and one
    # waiting on a helper thread collided with the main thread's next one: in eager mode Horovod names
    # the tensor after the op's kernel, not after ``name``, so two eager allreduces in flight share a
    # name ("a tensor with the same name ... is currently being processed").

    def broadcast_object(self, obj: Any, root_rank: int = 0) -> Any:
        return hvd_tf.broadcast_object(obj, root_rank)

    def allgather_object(self, obj: Any) -> List[Any]:
        return hvd_tf.allgather_object(obj)

    def join(self) -> int:
        # Run eagerly, Horovod 0.28's join op returns at once from the second call on (before the other
        # ranks joined), and the next collective then mismatches; a fresh graph function per call waits.
        return int(tf.function(hvd_tf.join)())

    def broadcast_state(self, optimizer_has_state: bool, root_rank: int = 0) -> None:
        hvd_tf.broadcast_variables(self.model.variables, root_rank=root_rank)
        hvd_tf.broadcast_variables(keras_state.optimizer_variables(self.optimizer), root_rank=root_rank)

    # ----- state ----------------------------------------------------------------------------------

    def rng_state(self) -> Any:
        return keras_state.rng_state()

    def set_rng_state(self, state: Any) -> None:
        keras_state.set_rng_state(state)

    def checkpoint_writer(self, meta: Mapping[str, Any], rng: List[Any]
                          ) -> Tuple[Callable[[BinaryIO], None], Dict[str, Any]]:
        opt_values = [v.numpy() for v in keras_state.optimizer_variables(self.optimizer)]
        writer = keras_state.writer(self.model.get_weights(), opt_values)
        return writer, {"kind": keras_state.FORMAT, "rng": rng}

    def read_checkpoint(self, checkpoint: Checkpoint) -> Any:
        if checkpoint.meta.get("kind") != keras_state.FORMAT:
            raise ValueError(f"not a {keras_state.FORMAT} checkpoint")
        return keras_state.read(checkpoint.payload)

    def apply_checkpoint(self, checkpoint: Checkpoint, payload: Any) -> Loaded:
        keras_state.check_shapes("model", payload["model"], self.model.weights)
        optimizer_vars = keras_state.optimizer_variables(self.optimizer)
        keras_state.check_shapes("optimizer", payload["optimizer"], optimizer_vars)
        self.model.set_weights(payload["model"])
        for variable, value in zip(optimizer_vars, payload["optimizer"]):
            variable.assign(value)
        rng = checkpoint.meta.get("rng")
        return Loaded(checkpoint.meta.get("position") or {}, [rng] if isinstance(rng, dict) else rng, True)

    def parameters(self) -> List[Any]:
        return self.model.get_weights()

    # ----- elastic --------------------------------------------------------------------------------

    def elastic_state(self, **counters: int) -> Any:
        return _ElasticKerasState(self.model, self.optimizer, **counters)

    def elastic_run(self, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        return hvd.elastic.run(fn)

    def elastic_world(self) -> Tuple[int, int, int, int]:
        return hvd.rank(), hvd.size(), hvd.local_rank(), hvd.local_size()
