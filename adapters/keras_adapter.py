"""Managed TensorFlow training with Keras ``fit`` (tf_keras) and Horovod's Keras integration.

``fit`` runs once per epoch so that a resumed epoch can start at the batch where the checkpoint
was taken. Each epoch's order is a seeded permutation of the training set, padded to a multiple
of the world size and cut with ``tf.data`` ``shard(size, rank)``: equal batch counts on all ranks
(no rank waits in an allreduce the others never reach) and the same order after a resume.

For Keras a "step" is one batch (``fit``'s unit); with ``backward_passes_per_step`` > 1 Horovod
applies the optimizer every that many batches, and a resume in the middle of such a group loses
the partial gradient sum.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
from typing import Any, Dict, List, Optional, Tuple

import horovod.tensorflow as hvd_tf
import horovod.tensorflow.keras as hvd
import numpy as np
import tensorflow as tf

from hvdrun_cli.errors import Problem, UserInputError
from hvdrun_cli.spec.model import JobSpec

from . import keras_state
from .base import ENV_PARAM_DUMP, Adapter, LaunchInfo, RankContext, StopRequested, train_of
from .checkpoint import Checkpoint, CheckpointStore, Position, checkpoint_dir, warn
from .collective import check_reduction, root_decides
from .data import load_data
from .elastic import (ELASTIC_STOP_SIGNALS, WorldLog, commit_every, remaining_indices, resumed_processed, shard,
                      steps_in)
from .heartbeat import ProgressMarks
from .keras_build import build_loss, build_model, build_optimizer
from .reporting import Reporter, dump_parameters
from .schedule import make_schedule
from .stopping import STOP_SIGNALS, StopFlag, stop_check_due

keras = tf.keras
REDUCE_OPS = {"average": hvd.Average, "sum": hvd.Sum, "adasum": hvd_tf.Adasum}
COMPRESSIONS = {"none": hvd.Compression.none, "fp16": hvd.Compression.fp16}


class _DropCallbackTimingWarning(logging.Filter):
    """Keras warns when a callback takes longer than a batch; ours do (a tiny allreduce per step to
    agree on stopping), which on toy models is every batch. The warning would only be noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "is slow compared to the batch time" not in record.getMessage()


class KerasAdapter(Adapter):
    framework = "tensorflow"

    def init(self, launch: LaunchInfo) -> RankContext:
        tf.get_logger().addFilter(_DropCallbackTimingWarning())
        tf.config.threading.set_intra_op_parallelism_threads(launch.threads)
        tf.config.threading.set_inter_op_parallelism_threads(max(2, launch.threads))
        hvd.init()
        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            for gpu in gpus:
                tf.config.experimental.set_memory_growth(gpu, True)
            tf.config.set_visible_devices(gpus[hvd.local_rank() % len(gpus)], "GPU")
        self.launch = launch
        return RankContext(hvd.rank(), hvd.size(), hvd.local_rank(), hvd.local_size(), launch.run_dir,
                           launch.attempt)

    def run(self, spec: JobSpec, ctx: RankContext) -> Dict[str, Any]:
        training = ElasticKerasTraining if spec.elastic is not None else KerasTraining
        return training(spec, ctx, self.launch).run()


class ResumableWarmup(hvd.callbacks.LearningRateWarmupCallback):
    """Horovod's warmup, able to start mid-epoch (``batch_offset``) and capped at the target rate.

    ``momentum_correction=False`` because the Keras 2.11+ optimizers keep momentum as a float,
    which Horovod's correction cannot adjust. Horovod's own multiplier overshoots past
    ``warmup_epochs`` when that is fractional; the cap keeps the rate at its target instead.
    """

    def __init__(self, initial_lr: float, warmup_epochs: float, steps_per_epoch: int) -> None:
        super().__init__(initial_lr=initial_lr, warmup_epochs=warmup_epochs, momentum_correction=False,
                         steps_per_epoch=steps_per_epoch, verbose=0)
        uncapped = self.multiplier
        self.multiplier = lambda epoch: min(1.0, uncapped(epoch))
        self.end_epoch = math.ceil(warmup_epochs)
        self.batch_offset = 0

    def on_batch_begin(self, batch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        super().on_batch_begin(batch + self.batch_offset, logs)


class StepCallback(keras.callbacks.Callback):
    """Counts steps and, at each step boundary: progress, periodic checkpoint, stop agreement."""

    def __init__(self, training: "KerasTraining") -> None:
        super().__init__()
        self.t = training
        self.fit_samples = 0  # samples this rank trained on in the current fit call
        self.window_mark = (0, 0.0, 0.0)  # (samples, loss sum, correct) at the last progress line

    def on_epoch_begin(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        self.fit_samples = 0
        self.window_mark = (0, 0.0, 0.0)

    def on_train_batch_begin(self, batch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        self.t.reporter.first_step()

    def on_train_batch_end(self, batch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        t, logs = self.t, logs or {}
        pos = t.position
        n = t.batch_len(pos.step_in_epoch)
        t.position = Position(pos.epoch, pos.step_in_epoch + 1, pos.global_step + 1)
        t.marks.step_done(t.position.global_step)
        t.samples += n * t.ctx.size
        self.fit_samples += n
        if t.reporter.due(t.position.global_step):
            # Keras logs running means over the fit call; turn them into this window's sums.
            loss_sum = float(logs.get("loss", 0.0)) * self.fit_samples
            correct = float(logs.get("accuracy", 0.0)) * self.fit_samples
            mark = self.window_mark
            window = np.array([loss_sum - mark[1], correct - mark[2], self.fit_samples - mark[0]])
            self.window_mark = (self.fit_samples, loss_sum, correct)
            total = hvd_tf.allreduce(tf.constant(window, tf.float64), op=hvd_tf.Sum).numpy()
            if total[2] > 0:
                t.reporter.progress(epoch=pos.epoch, global_step=t.position.global_step, loss=total[0] / total[2],
                                    accuracy=total[1] / total[2], lr=t.current_lr(), samples_done=t.samples)
        interval = t.spec.checkpoint.interval_steps
        if interval and t.position.global_step % interval == 0:
            t.save()
        if stop_check_due(t.position.global_step, t.total_steps) and t.stop_agreed():
            t.stopping = True
            self.model.stop_training = True
        elif t.position.global_step >= t.total_steps:
            self.model.stop_training = True


class KerasTraining:
    """One run: set up, maybe resume, fit epoch by epoch, finish (or stop) together."""

    stop_signals = STOP_SIGNALS

    def __init__(self, spec: JobSpec, ctx: RankContext, launch: LaunchInfo) -> None:
        self.spec, self.ctx, self.launch = spec, ctx, launch
        self.train = train = train_of(spec)
        self.stop = StopFlag().install(self.stop_signals)
        keras.utils.set_random_seed(train.seed)  # same initial weights on every rank
        if train.deterministic:
            tf.config.experimental.enable_op_determinism()
        self.store = CheckpointStore(checkpoint_dir(spec), spec.checkpoint.keep, ".npz")
        self._check_checkpoint_dir()

        data = load_data(spec)
        self.data = data
        self.shard_len = -(-len(data.x_train) // ctx.size)  # after padding, identical on every rank
        self.steps_per_epoch = -(-self.shard_len // train.batch_size)
        self.total_steps = train.epochs * self.steps_per_epoch
        if train.max_steps is not None:
            self.total_steps = min(self.total_steps, train.max_steps)
        self.x_train, self.y_train = tf.constant(data.x_train), tf.constant(data.y_train)

        if train.mixed_precision:
            keras.mixed_precision.set_global_policy("mixed_bfloat16")
        self.model = build_model(spec, data.input_shape, data.num_classes)
        self.schedule = make_schedule(train.lr, train.lr_scaling, ctx.size, train.warmup_epochs,
                                      self.steps_per_epoch)
        hv = spec.horovod
        check_reduction(hv.reduction, hvd_tf.mpi_enabled())
        self.optimizer = hvd.DistributedOptimizer(
            build_optimizer(spec, self.schedule.peak),
            compression=COMPRESSIONS[hv.compression],
            op=REDUCE_OPS[hv.reduction],
            backward_passes_per_step=max(1, hv.backward_passes_per_step),
            average_aggregated_gradients=True,  # like the PyTorch side: the mean over the step's batches
            gradient_predivide_factor=hv.gradient_predivide_factor,
        )
        self.model.compile(optimizer=self.optimizer, loss=build_loss(spec),
                           metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
        # Create the optimizer's slots now, so a checkpoint can fill them and rank 0 can broadcast them.
        self.optimizer.build(self.model.trainable_variables)

        self.position = Position()
        self.samples = 0
        self.stopping = False
        self.last_saved: Optional[int] = None
        self.reporter = Reporter(ctx, self.total_steps, train.epochs, train.log_interval,
                                 framework="tensorflow", tensorboard=train.tensorboard)
        self.marks = ProgressMarks()
        self.warmup: Optional[ResumableWarmup] = None
        self.callbacks: List[Any] = [
            hvd.callbacks.BroadcastGlobalVariablesCallback(0),
            hvd.callbacks.MetricAverageCallback(),  # epoch-end logs become the mean over ranks
        ]
        if train.warmup_epochs > 0 and ctx.size > 1:
            self.warmup = ResumableWarmup(self.schedule.peak, train.warmup_epochs, self.steps_per_epoch)
            self.callbacks.append(self.warmup)
        self.callbacks.append(StepCallback(self))

    def _check_checkpoint_dir(self) -> None:
        """Collective: fail on every rank, before training, when rank 0 could not save checkpoints."""
        root_decides(self.ctx, hvd_tf.broadcast_object, self.store.ensure_writable)

    # ----- data -----------------------------------------------------------------------------

    def batch_len(self, batch: int) -> int:
        return min(self.train.batch_size, self.shard_len - batch * self.train.batch_size)

    def epoch_dataset(self, epoch: int, skip_batches: int) -> "tf.data.Dataset":
        n, size = len(self.data.x_train), self.ctx.size
        order = np.random.default_rng([self.train.seed, epoch]).permutation(n)
        order = np.concatenate([order, order[: self.shard_len * size - n]])  # pad like DistributedSampler
        ds = tf.data.Dataset.from_tensor_slices(order).shard(size, self.ctx.rank)
        ds = ds.batch(self.train.batch_size).skip(skip_batches)
        ds = ds.map(lambda idx: (tf.gather(self.x_train, idx), tf.gather(self.y_train, idx)))
        return ds.prefetch(2)

    def current_lr(self) -> float:
        return float(keras.backend.get_value(self.optimizer.learning_rate))

    # ----- collectives ------------------------------------------------------------------------

    def stop_agreed(self) -> bool:
        flag = tf.constant([1 if self.stop.requested else 0], dtype=tf.int32)
        return int(hvd_tf.allreduce(flag, op=hvd_tf.Max, name="hvdjob.stop").numpy()[0]) > 0

    def validate(self) -> Tuple[Optional[float], Optional[float]]:
        """Each rank evaluates its own slice of the validation set (no padding); sums are combined."""
        x = self.data.x_val[self.ctx.rank::self.ctx.size]
        y = self.data.y_val[self.ctx.rank::self.ctx.size]
        sums = np.zeros(3)
        if len(x):
            result = self.model.evaluate(x, y, batch_size=4 * self.train.batch_size, verbose=0, return_dict=True)
            sums = np.array([result["loss"] * len(x), result["accuracy"] * len(x), len(x)])
        total = hvd_tf.allreduce(tf.constant(sums, tf.float64), op=hvd_tf.Sum).numpy()
        if total[2] <= 0:
            return None, None
        return float(total[0] / total[2]), float(total[1] / total[2])

    # ----- checkpoints ------------------------------------------------------------------------

    def save(self) -> None:
        """Rank 0 writes weights + optimizer arrays and a JSON sidecar with position and RNG.

        Collective: every rank learns whether the write worked, so a full disk stops all ranks with one error.
        """
        position = self.position.normalized(self.steps_per_epoch)
        root_decides(self.ctx, hvd_tf.broadcast_object, lambda: self._write_checkpoint(position))
        self.last_saved = position.global_step

    def _write_checkpoint(self, position: Position) -> None:
        opt_values = [v.numpy() for v in keras_state.optimizer_variables(self.optimizer)]
        meta = self._checkpoint_meta(position)
        path = self.store.save(position.global_step, keras_state.writer(self.model.get_weights(), opt_values), meta)
        self.reporter.event(f"checkpoint saved: {path}")

    def _checkpoint_meta(self, position: Position) -> Dict[str, Any]:
        return {"framework": "tensorflow", "kind": keras_state.FORMAT, "job": self.spec.name,
                "position": position.as_dict(), "world_size": self.ctx.size, "rng": keras_state.rng_state(),
                "lr_schedule": {"peak": self.schedule.peak, "size": self.schedule.size,
                                "warmup_steps": self.schedule.warmup_steps}}

    def _load(self, checkpoint: Checkpoint) -> Dict[str, Any]:
        if checkpoint.meta.get("kind") != keras_state.FORMAT:
            raise ValueError(f"not a {keras_state.FORMAT} checkpoint")
        arrays = keras_state.read(checkpoint.payload)
        keras_state.check_shapes("model", arrays["model"], self.model.weights)
        keras_state.check_shapes("optimizer", arrays["optimizer"], keras_state.optimizer_variables(self.optimizer))
        return arrays

    def _load_on_root(self) -> Optional[Dict[str, Any]]:
        mode = self.spec.checkpoint.resume
        if mode == "never":
            return None
        found = self.store.load_newest(self._load) if mode == "auto" else self.store.load_path(mode, self._load)
        if found is None:
            return None
        checkpoint, arrays = found
        self.model.set_weights(arrays["model"])
        for variable, value in zip(keras_state.optimizer_variables(self.optimizer), arrays["optimizer"]):
            variable.assign(value)
        meta = checkpoint.meta
        if "position" not in meta:
            raise UserInputError(Problem("checkpoint has no sidecar with its position", key="checkpoint.resume",
                                         got=checkpoint.payload))
        if meta.get("world_size") not in (None, self.ctx.size):
            warn(f"checkpoint was written by {meta['world_size']} ranks, now {self.ctx.size}: data order "
                 "differs from an uninterrupted run")
        return {"position": meta["position"], "rng": meta.get("rng"), "path": checkpoint.payload}

    def resume(self) -> Optional[int]:
        """Rank 0 loads; variables are broadcast before the first batch so every rank starts equal."""
        info = root_decides(self.ctx, hvd_tf.broadcast_object, self._load_on_root)
        hvd_tf.broadcast_variables(self.model.variables, root_rank=0)
        hvd_tf.broadcast_variables(keras_state.optimizer_variables(self.optimizer), root_rank=0)
        if info is None:
            return None
        if info.get("rng"):
            keras_state.set_rng_state(info["rng"])
        self.position = Position.from_dict(info["position"]).normalized(self.steps_per_epoch)
        self.last_saved = self.position.global_step
        self.reporter.event(f"resumed from {info['path']} at step {self.position.global_step} "
                            f"(epoch {self.position.epoch + 1}, step {self.position.step_in_epoch} of the epoch)")
        return self.position.global_step

    # ----- the run ----------------------------------------------------------------------------

    def run(self) -> Dict[str, Any]:
        resumed_from = self.resume()
        train = self.train
        train_metrics: Tuple[Optional[float], Optional[float]] = (None, None)
        val_metrics: Tuple[Optional[float], Optional[float]] = (None, None)
        validated_at: Optional[int] = None
        while (self.position.epoch < train.epochs and self.position.global_step < self.total_steps
               and not self.stopping):
            epoch, start = self.position.epoch, self.position.step_in_epoch
            steps = min(self.steps_per_epoch - start, self.total_steps - self.position.global_step)
            if self.warmup is not None:
                self.warmup.batch_offset = start
            history = self.model.fit(self.epoch_dataset(epoch, start), epochs=epoch + 1, initial_epoch=epoch,
                                     steps_per_epoch=steps, callbacks=self.callbacks, verbose=0)
            logs = {k: v[-1] for k, v in history.history.items() if v}
            train_metrics = (logs.get("loss"), logs.get("accuracy"))
            if self.stopping:
                break
            if train.validate and self.position.step_in_epoch == self.steps_per_epoch:
                val_metrics = self.validate()
                validated_at = self.position.global_step
                if val_metrics[0] is not None:
                    self.reporter.validation(epoch=epoch, global_step=self.position.global_step,
                                             loss=val_metrics[0], accuracy=val_metrics[1] or 0.0)
            self.position = self.position.normalized(self.steps_per_epoch)
        if self.stopping:
            self.reporter.event(f"stop requested ({self.stop.signal_name or 'signal on another rank'}); "
                                f"saving at step {self.position.global_step}")
            raise StopRequested(self._finish("stopped", resumed_from, train_metrics, val_metrics))
        if train.validate and validated_at != self.position.global_step:
            val_metrics = self.validate()
        status = "completed" if self.position.epoch >= train.epochs else "max_steps"
        return self._finish(status, resumed_from, train_metrics, val_metrics)

    def _finish(self, status: str, resumed_from: Optional[int], train_metrics: Tuple[Optional[float], Optional[float]],
                val_metrics: Tuple[Optional[float], Optional[float]]) -> Dict[str, Any]:
        """Final checkpoint, summary and parameter dump, then a barrier so nobody exits early."""
        position = self.position.normalized(self.steps_per_epoch)
        if self.last_saved != position.global_step:
            self.save()
        summary = self.reporter.summary(
            framework="tensorflow", status=status, steps=position.global_step,
            epochs_done=self._epochs_done(position), samples=self.samples,
            train_loss=train_metrics[0], train_accuracy=train_metrics[1], val_loss=val_metrics[0],
            val_accuracy=val_metrics[1], resumed_from_step=resumed_from,
            process_start=self.launch.process_start_unix_time,
            checkpoint=self.store.payload_path(position.global_step) if self.last_saved is not None else None,
            extra=self._summary_extra())
        dump_dir = os.environ.get(ENV_PARAM_DUMP)
        if dump_dir:
            dump_parameters(dump_dir, self.ctx.rank, self.model.get_weights())
        hvd_tf.join()
        return summary

    def _summary_extra(self) -> Dict[str, Any]:
        return {"threads_per_rank": self.launch.threads, "steps_per_epoch": self.steps_per_epoch}

    def _epochs_done(self, position: Position) -> float:
        return position.global_step / max(1, self.steps_per_epoch)



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


class ElasticStepCallback(keras.callbacks.Callback):
    """Per batch under elastic mode: learning rate for the current size, counters, commits, stop agreement."""

    def __init__(self, training: "ElasticKerasTraining", state: Any) -> None:
        super().__init__()
        self.t, self.state = training, state
        self.window = np.zeros(3)
        self.fit_samples = 0
        self.mark = (0, 0.0, 0.0)

    def on_train_batch_begin(self, batch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        self.t.reporter.first_step()
        keras.backend.set_value(self.t.optimizer.learning_rate, self.t.schedule.at(self.state.step))

    def on_train_batch_end(self, batch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        t, state, logs = self.t, self.state, logs or {}
        n = t.batch_sizes[batch] if batch < len(t.batch_sizes) else t.train.batch_size
        state.step += 1
        state.processed += t.train.batch_size * t.ctx.size
        t.samples += n * t.ctx.size
        self.fit_samples += n
        t.marks.step_done(state.step)
        if t.reporter.due(state.step):
            loss_sum = float(logs.get("loss", 0.0)) * self.fit_samples
            correct = float(logs.get("accuracy", 0.0)) * self.fit_samples
            window = np.array([loss_sum - self.mark[1], correct - self.mark[2], self.fit_samples - self.mark[0]])
            self.mark = (self.fit_samples, loss_sum, correct)
            total = hvd_tf.allreduce(tf.constant(window, tf.float64), op=hvd_tf.Sum).numpy()
            if total[2] > 0:
                t.reporter.progress(epoch=state.epoch, global_step=state.step, loss=total[0] / total[2],
                                    accuracy=total[1] / total[2], lr=t.current_lr(), samples_done=t.samples)
        interval = t.spec.checkpoint.interval_steps
        if interval and state.step % interval == 0:
            t.save_elastic(state)
        if stop_check_due(state.step, t.step_cap) and t.stop_agreed():
            t.stopping = True
            self.model.stop_training = True
            return
        if state.step >= t.step_cap:
            self.model.stop_training = True
        if state.step % commit_every(t.train) == 0:
            state.commit()  # may raise HostsUpdatedInterrupt: hvd.elastic.run re-enters the training function


class ElasticKerasTraining(KerasTraining):
    """Keras training under ``horovodrun`` elastic mode: survives lost workers and takes in new ones.

    Like the PyTorch side: Horovod's ``KerasState`` (model, optimizer, epoch, step, samples done in
    the epoch) is committed every few steps; after a reset the epoch's remaining samples are
    re-sharded over the current ranks and ``fit`` continues. Collectives happen only inside the
    elastic training function.
    """

    stop_signals = ELASTIC_STOP_SIGNALS

    def __init__(self, spec: JobSpec, ctx: RankContext, launch: LaunchInfo) -> None:
        super().__init__(spec, ctx, launch)
        # state.sync() broadcasts the variables; a broadcast callback would only repeat it.
        self.callbacks = [hvd.callbacks.MetricAverageCallback()]
        self.world = WorldLog()
        self.resumed_from: Optional[int] = None
        self.batch_sizes: List[int] = []
        self.step_cap = train_of(spec).max_steps or float("inf")
        self.processed = 0  # samples of the current epoch done, as of self.position

    def _check_checkpoint_dir(self) -> None:
        pass  # collective: done inside the elastic training function instead

    def _initial_counters(self) -> Dict[str, int]:
        """Start from rank 0's newest file checkpoint, loaded locally; the first sync shares it."""
        counters = {"epoch": 0, "step": 0, "processed": 0}
        if self.ctx.rank != 0 or self.spec.checkpoint.resume == "never":
            return counters
        mode = self.spec.checkpoint.resume
        found = self.store.load_newest(self._load) if mode == "auto" else self.store.load_path(mode, self._load)
        if found is None:
            return counters
        checkpoint, arrays = found
        self.model.set_weights(arrays["model"])
        for variable, value in zip(keras_state.optimizer_variables(self.optimizer), arrays["optimizer"]):
            variable.assign(value)
        position = Position.from_dict(checkpoint.meta["position"])
        n = len(self.data.x_train)
        processed = resumed_processed(checkpoint.meta, self.train.batch_size, 1, n)
        epoch = position.epoch + (1 if processed >= n else 0)
        processed = 0 if processed >= n else processed
        self.resumed_from = self.last_saved = position.global_step
        self.reporter.event(f"resumed from {checkpoint.payload} at step {position.global_step} "
                            f"(epoch {epoch + 1}, {processed} samples of it done)")
        return {"epoch": epoch, "step": position.global_step, "processed": processed}

    def _on_reset(self) -> None:
        self.ctx = dataclasses.replace(self.ctx, rank=hvd.rank(), size=hvd.size(), local_rank=hvd.local_rank(),
                                       local_size=hvd.local_size())
        self.reporter.ctx, self.reporter.enabled = self.ctx, self.ctx.is_root
        self.steps_per_epoch = steps_in(-(-len(self.data.x_train) // self.ctx.size), self.train.batch_size)
        self.schedule = make_schedule(self.train.lr, self.train.lr_scaling, self.ctx.size, self.train.warmup_epochs,
                                      self.steps_per_epoch)

    def run(self) -> Dict[str, Any]:
        counters = self._initial_counters()
        state = _ElasticKerasState(self.model, self.optimizer, **counters)
        state.register_reset_callbacks([self._on_reset])
        return hvd.elastic.run(self._train)(state)

    def _train(self, state: Any) -> Dict[str, Any]:
        """The elastic training function: (re-)entered by every current worker together."""
        self._on_reset()
        root_decides(self.ctx, hvd_tf.broadcast_object, self.store.ensure_writable)
        message = self.world.record(state.step, self.ctx.size)
        if message:
            self.reporter.event(message)
        train, n = self.train, len(self.data.x_train)
        left = (steps_in(-(-max(0, n - state.processed) // self.ctx.size), train.batch_size)
                + max(0, train.epochs - state.epoch - 1) * self.steps_per_epoch)
        self.reporter.total_steps = int(min(self.step_cap, state.step + left))  # for the progress lines
        callback = ElasticStepCallback(self, state)
        train_metrics: Tuple[Optional[float], Optional[float]] = (None, None)
        val_metrics: Tuple[Optional[float], Optional[float]] = (None, None)
        while state.epoch < train.epochs and state.step < self.step_cap and not self.stopping:
            mine = shard(remaining_indices(n, train.seed, state.epoch, state.processed), self.ctx.size, self.ctx.rank)
            steps = min(steps_in(len(mine), train.batch_size), self.step_cap - state.step)
            if steps > 0:
                self.batch_sizes = [len(b) for b in np.array_split(mine, range(train.batch_size, len(mine),
                                                                                 train.batch_size))]
                ds = tf.data.Dataset.from_tensor_slices(mine).batch(train.batch_size)
                ds = ds.map(lambda idx: (tf.gather(self.x_train, idx), tf.gather(self.y_train, idx))).prefetch(2)
                callback.fit_samples, callback.mark = 0, (0, 0.0, 0.0)
                history = self.model.fit(ds, epochs=1, steps_per_epoch=int(steps), verbose=0,
                                         callbacks=self.callbacks + [callback])
                logs = {k: v[-1] for k, v in history.history.items() if v}
                train_metrics = (logs.get("loss"), logs.get("accuracy"))
            if self.stopping or state.processed < n:
                continue  # stopped, or max_steps reached mid-epoch: the loop condition ends it
            if train.validate:
                val_metrics = self.validate()
                if val_metrics[0] is not None:
                    self.reporter.validation(epoch=state.epoch, global_step=state.step, loss=val_metrics[0],
                                             accuracy=val_metrics[1] or 0.0)
            state.epoch, state.processed = state.epoch + 1, 0
            state.commit()
        self._take_position(state)
        if self.stopping:
            self.reporter.event(f"stop requested ({self.stop.signal_name or 'signal on another rank'}); "
                                f"saving at step {state.step}")
            raise StopRequested(self._finish("stopped", self.resumed_from, train_metrics, val_metrics))
        status = "completed" if state.epoch >= train.epochs else "max_steps"
        return self._finish(status, self.resumed_from, train_metrics, val_metrics)

    def _take_position(self, state: Any) -> None:
        """Copy the elastic counters into the fields the checkpoint and summary code reads."""
        per_step = self.train.batch_size * self.ctx.size
        self.processed = min(state.processed, len(self.data.x_train))
        self.position = Position(state.epoch, -(-self.processed // per_step), state.step)

    def save_elastic(self, state: Any) -> None:
        self._take_position(state)
        self.save()

    def _checkpoint_meta(self, position: Position) -> Dict[str, Any]:
        return {**super()._checkpoint_meta(position), "elastic": {"processed": int(self.processed)}}

    def _summary_extra(self) -> Dict[str, Any]:
        return {**super()._summary_extra(), "elastic": self.world.summary()}

    def _epochs_done(self, position: Position) -> float:
        return position.epoch + self.processed / max(1, len(self.data.x_train))
