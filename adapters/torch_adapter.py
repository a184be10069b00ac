"""Managed PyTorch training with Horovod.

One optimizer step = ``backward_passes_per_step`` batches of ``batch_size`` per rank. The data
order of an epoch comes from ``DistributedSampler(seed).set_epoch(epoch)``, so it is a pure
function of (seed, epoch, world size): a resume replays it and skips the steps already done.
Every few steps the ranks agree (allreduce-max) whether anyone received a stop signal.
"""
from __future__ import annotations

import dataclasses
import os
import random
from typing import Any, Dict, List, Optional, Tuple

import horovod.torch as hvd
import numpy as np
import torch
from torch.utils.data import DistributedSampler, TensorDataset

from hvdrun_cli.errors import Problem, UserInputError
from hvdrun_cli.spec.model import JobSpec

from . import torch_state
from .base import ENV_PARAM_DUMP, Adapter, LaunchInfo, RankContext, StopRequested, train_of
from .checkpoint import Checkpoint, CheckpointStore, Position, checkpoint_dir, warn
from .collective import check_reduction, root_decides
from .data import load_data
from .elastic import ELASTIC_STOP_SIGNALS, WorldLog, commit_every, resumed_processed, steps_in
from .heartbeat import ProgressMarks
from .reporting import Reporter, dump_parameters
from .schedule import LrSchedule, make_schedule
from .stopping import STOP_SIGNALS, StopFlag, stop_check_due
from .torch_build import build_loss, build_model, build_optimizer

REDUCE_OPS = {"average": hvd.Average, "sum": hvd.Sum, "adasum": hvd.Adasum}
COMPRESSIONS = {"none": hvd.Compression.none, "fp16": hvd.Compression.fp16}


def seed_everything(seed: int, deterministic: bool) -> None:
    """Same seed on every rank: identical initial weights even before the broadcast."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def _sum_across_ranks(values: torch.Tensor) -> torch.Tensor:
    return hvd.allreduce(values, op=hvd.Sum)


def _mean_metrics(sums: torch.Tensor) -> Tuple[Optional[float], Optional[float]]:
    """(loss, accuracy) from summed [loss * n, correct, n]."""
    loss_sum, correct, count = (float(v) for v in sums)
    if count <= 0:
        return None, None
    return loss_sum / count, correct / count


class TorchAdapter(Adapter):
    framework = "torch"

    def init(self, launch: LaunchInfo) -> RankContext:
        torch.set_num_threads(launch.threads)
        hvd.init()
        if torch.cuda.is_available():
            torch.cuda.set_device(hvd.local_rank())
        self.launch = launch
        return RankContext(hvd.rank(), hvd.size(), hvd.local_rank(), hvd.local_size(), launch.run_dir,
                           launch.attempt)

    def run(self, spec: JobSpec, ctx: RankContext) -> Dict[str, Any]:
        training = ElasticTorchTraining if spec.elastic is not None else TorchTraining
        return training(spec, ctx, self.launch).run()


class TorchTraining:
    """One run: set up, maybe resume, loop over steps, finish (or stop) together."""

    stop_signals = STOP_SIGNALS

    def __init__(self, spec: JobSpec, ctx: RankContext, launch: LaunchInfo) -> None:
        self.spec, self.ctx, self.launch = spec, ctx, launch
        self.train = train = train_of(spec)
        self.stop = StopFlag().install(self.stop_signals)
        seed_everything(train.seed, train.deterministic)
        self.device = torch.device("cuda", ctx.local_rank) if torch.cuda.is_available() else torch.device("cpu")
        self.store = CheckpointStore(checkpoint_dir(spec), spec.checkpoint.keep, ".pt")
        self._check_checkpoint_dir()

        data = load_data(spec)
        self.x_train, self.y_train = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
        self.x_val, self.y_val = torch.from_numpy(data.x_val), torch.from_numpy(data.y_val)
        # Pads the last shard by repeating samples, so every rank runs the same number of steps.
        self.sampler = DistributedSampler(TensorDataset(self.x_train), num_replicas=ctx.size, rank=ctx.rank,
                                          shuffle=True, seed=train.seed, drop_last=False)
        self.passes = max(1, spec.horovod.backward_passes_per_step)
        batches = -(-len(self.sampler) // train.batch_size)
        self.steps_per_epoch = -(-batches // self.passes)
        self.total_steps = train.epochs * self.steps_per_epoch
        if train.max_steps is not None:
            self.total_steps = min(self.total_steps, train.max_steps)

        self.model = build_model(spec, data.input_shape, data.num_classes).to(self.device)
        self.schedule: LrSchedule = make_schedule(train.lr, train.lr_scaling, ctx.size, train.warmup_epochs,
                                                  self.steps_per_epoch)
        hv = spec.horovod
        check_reduction(hv.reduction, hvd.mpi_enabled())
        self.optimizer = hvd.DistributedOptimizer(
            build_optimizer(spec, self.model, self.schedule.at(0)),
            named_parameters=self.model.named_parameters(),
            compression=COMPRESSIONS[hv.compression],
            op=REDUCE_OPS[hv.reduction],
            backward_passes_per_step=self.passes,
            gradient_predivide_factor=hv.gradient_predivide_factor,
        )
        self.loss_fn = build_loss(spec)
        # Different dropout masks per rank; the model was already initialised from the shared seed.
        torch.manual_seed(train.seed + 1000003 * (ctx.rank + 1))
        self.reporter = Reporter(ctx, self.total_steps, train.epochs, train.log_interval,
                                 framework="torch", tensorboard=train.tensorboard)
        self.marks = ProgressMarks()
        self.last_saved: Optional[int] = None

    def _check_checkpoint_dir(self) -> None:
        """Collective: fail on every rank, before training, when rank 0 could not save checkpoints."""
        root_decides(self.ctx, hvd.broadcast_object, self.store.ensure_writable)

    # ----- resume ---------------------------------------------------------------------------

    def _load_on_root(self) -> Optional[Dict[str, Any]]:
        mode = self.spec.checkpoint.resume
        if mode == "never":
            return None
        if mode == "auto":
            found = self.store.load_newest(lambda c: torch_state.read(c.payload))
        else:
            found = self.store.load_path(mode, lambda c: torch_state.read(c.payload))
        if found is None:
            return None
        checkpoint, state = found
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise UserInputError(Problem(f"checkpoint does not fit this model/optimizer ({exc}); use "
                                         "'resume: never' or another checkpoint.dir", key="checkpoint.resume",
                                         got=checkpoint.payload)) from exc
        return {"position": state["position"], "rng": state["rng"], "path": checkpoint.payload,
                "optimizer_has_state": bool(state["optimizer"].get("state"))}

    def _resume(self) -> Tuple[Position, Optional[int]]:
        """Load on rank 0 and broadcast, so every rank continues from rank 0's state."""
        info = root_decides(self.ctx, hvd.broadcast_object, self._load_on_root)
        if info is None:
            hvd.broadcast_parameters(self.model.state_dict(), root_rank=0)
            return Position(), None
        # Optimizer state first: Horovod initialises empty optimizer state on the other ranks with a
        # zero-gradient step, which (with weight decay) moves their weights; the parameter broadcast
        # below then overwrites them. A fresh start skips this entirely for the same reason.
        if info["optimizer_has_state"]:
            hvd.broadcast_optimizer_state(self.optimizer, root_rank=0)
        hvd.broadcast_parameters(self.model.state_dict(), root_rank=0)
        rng = info["rng"]
        if len(rng) == self.ctx.size:
            torch_state.set_rng_state(rng[self.ctx.rank])
        elif self.ctx.is_root:
            warn(f"checkpoint was written by {len(rng)} ranks, now {self.ctx.size}: data order and random "
                 "streams differ from an uninterrupted run")
        position = Position.from_dict(info["position"]).normalized(self.steps_per_epoch)
        self.last_saved = position.global_step
        self.reporter.event(f"resumed from {info['path']} at step {position.global_step} "
                            f"(epoch {position.epoch + 1}, step {position.step_in_epoch} of the epoch)")
        return position, position.global_step

    # ----- steps ----------------------------------------------------------------------------

    def _epoch_groups(self, epoch: int) -> List[List[torch.Tensor]]:
        """This rank's batches of the epoch, grouped into optimizer steps."""
        self.sampler.set_epoch(epoch)
        indices = torch.tensor(list(self.sampler), dtype=torch.long)
        batches = list(torch.split(indices, self.train.batch_size))
        return [batches[i:i + self.passes] for i in range(0, len(batches), self.passes)]

    def _forward(self, x: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        # bfloat16 autocast needs no loss scaling, on CPU and GPU alike.
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.train.mixed_precision):
            out = self.model(x)
            loss = self.loss_fn(out, y)
        correct = (out.argmax(dim=1) == y).sum()
        return loss, torch.stack([loss.detach().double() * len(y), correct.double(),
                                  torch.tensor(float(len(y)), dtype=torch.float64)]).cpu()

    def _train_step(self, group: List[torch.Tensor], lr: float) -> torch.Tensor:
        for param_group in self.optimizer.param_groups:
            param_group["lr"] = lr
        self.optimizer.zero_grad()
        sums = torch.zeros(3, dtype=torch.float64)
        for idx in group:
            loss, batch_sums = self._forward(self.x_train[idx], self.y_train[idx])
            (loss / len(group)).backward()  # the step's gradient is the mean over its batches
            sums += batch_sums
        self.optimizer.step()
        return sums

    @torch.no_grad()
    def _validate(self) -> Tuple[Optional[float], Optional[float]]:
        """Each rank scores its own slice of the validation set (no padding); sums are combined."""
        self.model.eval()
        sums = torch.zeros(3, dtype=torch.float64)
        for idx in torch.split(torch.arange(self.ctx.rank, len(self.x_val), self.ctx.size), 4 * self.train.batch_size):
            sums += self._forward(self.x_val[idx], self.y_val[idx])[1]
        self.model.train()
        return _mean_metrics(_sum_across_ranks(sums))

    def _stop_agreed(self) -> bool:
        flag = torch.tensor([1 if self.stop.requested else 0], dtype=torch.int32)
        return int(hvd.allreduce(flag, op=hvd.Max, name="hvdjob.stop")[0]) > 0

    def _save(self, position: Position) -> None:
        """Collective (RNG states are gathered from every rank); rank 0 writes the file.

        Every rank learns whether the write worked, so a full disk stops all ranks with one error.
        """
        rng = hvd.allgather_object(torch_state.rng_state())
        root_decides(self.ctx, hvd.broadcast_object, lambda: self._write_checkpoint(position, rng))
        self.last_saved = position.global_step

    def _write_checkpoint(self, position: Position, rng: List[Any]) -> None:
        """Rank 0 only: the checkpoint file with model, optimizer, position and every rank's RNG."""
        state = torch_state.make_state(self.model, self.optimizer, position, rng, self._checkpoint_extra())
        meta = {"framework": "torch", "job": self.spec.name, "position": position.as_dict(),
                "world_size": self.ctx.size}
        path = self.store.save(position.global_step, torch_state.writer(state), meta)
        self.reporter.event(f"checkpoint saved: {path}")

    def _checkpoint_extra(self) -> Dict[str, Any]:
        return {"world_size": self.ctx.size, "job": self.spec.name,
                "sampler": {"seed": self.train.seed, "num_replicas": self.ctx.size,
                            "batch_size": self.train.batch_size, "backward_passes_per_step": self.passes},
                "lr_schedule": {"peak": self.schedule.peak, "size": self.schedule.size,
                                "warmup_steps": self.schedule.warmup_steps}}

    # ----- the run --------------------------------------------------------------------------

    def run(self) -> Dict[str, Any]:
        position, resumed_from = self._resume()
        train, rep = self.train, self.reporter
        interval = self.spec.checkpoint.interval_steps
        samples = 0
        train_metrics: Tuple[Optional[float], Optional[float]] = (None, None)
        val_metrics: Tuple[Optional[float], Optional[float]] = (None, None)
        validated_at: Optional[int] = None
        while position.epoch < train.epochs and position.global_step < self.total_steps:
            epoch = position.epoch
            groups = self._epoch_groups(epoch)
            epoch_sums = torch.zeros(3, dtype=torch.float64)
            window = torch.zeros(3, dtype=torch.float64)
            self.model.train()
            for step_in_epoch in range(position.step_in_epoch, len(groups)):
                rep.first_step()
                lr = self.schedule.at(position.global_step)
                sums = self._train_step(groups[step_in_epoch], lr)
                epoch_sums += sums
                window += sums
                samples += int(sums[2]) * self.ctx.size  # padded shards: every rank saw as many samples
                position = Position(epoch, step_in_epoch + 1, position.global_step + 1)
                self.marks.step_done(position.global_step)
                if rep.due(position.global_step):
                    loss, acc = _mean_metrics(_sum_across_ranks(window))
                    rep.progress(epoch=epoch, global_step=position.global_step, loss=loss or 0.0,
                                 accuracy=acc or 0.0, lr=lr, samples_done=samples)
                    window.zero_()
                if interval and position.global_step % interval == 0:
                    self._save(position)
                if stop_check_due(position.global_step, self.total_steps) and self._stop_agreed():
                    rep.event(f"stop requested ({self.stop.signal_name or 'signal on another rank'}); "
                              f"saving at step {position.global_step}")
                    train_metrics = _mean_metrics(_sum_across_ranks(epoch_sums))
                    raise StopRequested(self._finish("stopped", position, resumed_from, samples, train_metrics,
                                                     val_metrics))
                if position.global_step >= self.total_steps:
                    break
            train_metrics = _mean_metrics(_sum_across_ranks(epoch_sums))
            if train.validate and position.step_in_epoch == len(groups):
                val_metrics = self._validate()
                validated_at = position.global_step
                if val_metrics[0] is not None:
                    rep.validation(epoch=epoch, global_step=position.global_step, loss=val_metrics[0],
                                   accuracy=val_metrics[1] or 0.0)
            position = position.normalized(len(groups))
        if train.validate and validated_at != position.global_step:
            val_metrics = self._validate()
        status = "completed" if position.epoch >= train.epochs else "max_steps"
        return self._finish(status, position, resumed_from, samples, train_metrics, val_metrics)

    def _finish(self, status: str, position: Position, resumed_from: Optional[int], samples: int,
                train_metrics: Tuple[Optional[float], Optional[float]],
                val_metrics: Tuple[Optional[float], Optional[float]]) -> Dict[str, Any]:
        """Final checkpoint, summary and parameter dump, then a barrier so nobody exits early.

        The barrier matters: a launcher tears the job down when the first rank exits, which must
        not happen while rank 0 is still writing.
        """
        if self.last_saved != position.global_step:
            self._save(position)
        summary = self.reporter.summary(
            framework="torch", status=status, steps=position.global_step,
            epochs_done=self._epochs_done(position), samples=samples,
            train_loss=train_metrics[0], train_accuracy=train_metrics[1], val_loss=val_metrics[0],
            val_accuracy=val_metrics[1], resumed_from_step=resumed_from,
            process_start=self.launch.process_start_unix_time,
            checkpoint=self.store.payload_path(position.global_step) if self.last_saved is not None else None,
            extra=self._summary_extra())
        dump_dir = os.environ.get(ENV_PARAM_DUMP)
        if dump_dir:
            dump_parameters(dump_dir, self.ctx.rank,
                            [t.detach().cpu().double().numpy() for t in self.model.state_dict().values()])
        hvd.join()
        return summary

    def _summary_extra(self) -> Dict[str, Any]:
        return {"threads_per_rank": self.launch.threads, "steps_per_epoch": self.steps_per_epoch}

    def _epochs_done(self, position: Position) -> float:
        return position.global_step / max(1, self.steps_per_epoch)


class ElasticTorchTraining(TorchTraining):
    """Training under ``horovodrun`` elastic mode: survives lost workers and takes in new ones.

    ``hvd.elastic.TorchState`` holds model, optimizer, Horovod's ``ElasticSampler`` and the counters;
    it is committed every :func:`commit_every` steps. When a worker dies the others get a
    ``HorovodInternalError``, roll back to the last commit and continue with the workers left; when
    hosts come or go they re-enter the training function with the data re-sharded. All collectives
    happen inside that function, where every current worker is in step (a worker joining late runs
    this constructor while the others train). File checkpoints keep working for full restarts.
    """

    stop_signals = ELASTIC_STOP_SIGNALS

    def __init__(self, spec: JobSpec, ctx: RankContext, launch: LaunchInfo) -> None:
        super().__init__(spec, ctx, launch)
        self.elastic_sampler = hvd.elastic.ElasticSampler(TensorDataset(self.x_train), shuffle=True,
                                                          seed=self.train.seed)
        self.world = WorldLog()
        self.resumed_from: Optional[int] = None
        self.samples = 0

    def _check_checkpoint_dir(self) -> None:
        pass  # collective: done inside the elastic training function instead

    # ----- state ----------------------------------------------------------------------------

    def _initial_counters(self) -> Dict[str, int]:
        """Epoch, step and sampler position to start from: the newest file checkpoint when rank 0 has one.

        Local to this process (no collective): the first ``state.sync()`` broadcasts rank 0's values.
        """
        counters = {"epoch": 0, "step": 0}
        if self.ctx.rank != 0 or self.spec.checkpoint.resume == "never":
            return counters
        mode = self.spec.checkpoint.resume

        def read(checkpoint: Checkpoint) -> Dict[str, Any]:
            return torch_state.read(checkpoint.payload)

        found = self.store.load_newest(read) if mode == "auto" else self.store.load_path(mode, read)
        if found is None:
            return counters
        checkpoint, state = found
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        position = Position.from_dict(state["position"])
        processed = resumed_processed({**checkpoint.meta, **state}, self.train.batch_size, self.passes,
                                      len(self.x_train))
        epoch = position.epoch
        if processed >= len(self.x_train):
            epoch, processed = epoch + 1, 0
        self.elastic_sampler.set_epoch(epoch)
        self.elastic_sampler.processed_num = processed
        self.elastic_sampler.reset()
        self.resumed_from = position.global_step
        self.last_saved = position.global_step
        self.reporter.event(f"resumed from {checkpoint.payload} at step {position.global_step} "
                            f"(epoch {epoch + 1}, {processed} samples of it done)")
        return {"epoch": epoch, "step": position.global_step}

    def _on_reset(self) -> None:
        """After workers came or went: new rank and size, learning rate scaled to the new size."""
        self.ctx = dataclasses.replace(self.ctx, rank=hvd.rank(), size=hvd.size(), local_rank=hvd.local_rank(),
                                       local_size=hvd.local_size())
        self.reporter.ctx, self.reporter.enabled = self.ctx, self.ctx.is_root
        self.steps_per_epoch = steps_in(-(-len(self.x_train) // self.ctx.size), self.train.batch_size, self.passes)
        self.schedule = make_schedule(self.train.lr, self.train.lr_scaling, self.ctx.size, self.train.warmup_epochs,
                                      self.steps_per_epoch)

    # ----- the run --------------------------------------------------------------------------

    def run(self) -> Dict[str, Any]:
        counters = self._initial_counters()
        state = hvd.elastic.TorchState(self.model, self.optimizer, sampler=self.elastic_sampler, **counters)
        state.register_reset_callbacks([self._on_reset])
        return hvd.elastic.run(self._train)(state)

    def _train(self, state: Any) -> Dict[str, Any]:
        """The elastic training function: (re-)entered by every current worker together."""
        self._on_reset()
        root_decides(self.ctx, hvd.broadcast_object, self.store.ensure_writable)
        message = self.world.record(state.step, self.ctx.size)
        if message:
            self.reporter.event(message)
        train, rep = self.train, self.reporter
        cap = train.max_steps if train.max_steps is not None else float("inf")
        left_in_epoch = max(0, len(self.x_train) - state.sampler.processed_num)
        left = (steps_in(-(-left_in_epoch // self.ctx.size), train.batch_size, self.passes)
                + max(0, train.epochs - state.epoch - 1) * self.steps_per_epoch)
        rep.total_steps = int(min(cap, state.step + left))
        every, interval = commit_every(train), self.spec.checkpoint.interval_steps
        window = torch.zeros(3, dtype=torch.float64)
        train_metrics: Tuple[Optional[float], Optional[float]] = (None, None)
        val_metrics: Tuple[Optional[float], Optional[float]] = (None, None)
        while state.epoch < train.epochs and state.step < cap:
            indices = torch.tensor(list(state.sampler), dtype=torch.long)
            batches = list(torch.split(indices, train.batch_size))
            groups = [batches[i:i + self.passes] for i in range(0, len(batches), self.passes)]
            epoch_sums = torch.zeros(3, dtype=torch.float64)
            self.model.train()
            for group in groups:
                rep.first_step()
                lr = self.schedule.at(state.step)
                sums = self._train_step(group, lr)
                epoch_sums += sums
                window += sums
                state.sampler.record_batch(0, train.batch_size * len(group))
                state.step += 1
                self.samples += int(sums[2]) * self.ctx.size
                self.marks.step_done(state.step)
                if rep.due(state.step):
                    loss, acc = _mean_metrics(_sum_across_ranks(window))
                    rep.progress(epoch=state.epoch, global_step=state.step, loss=loss or 0.0, accuracy=acc or 0.0,
                                 lr=lr, samples_done=self.samples)
                    window.zero_()
                if interval and state.step % interval == 0:
                    self._save(self._position(state))
                if stop_check_due(state.step, cap) and self._stop_agreed():
                    rep.event(f"stop requested ({self.stop.signal_name or 'signal on another rank'}); "
                              f"saving at step {state.step}")
                    train_metrics = _mean_metrics(_sum_across_ranks(epoch_sums))
                    raise StopRequested(self._finish_elastic("stopped", state, train_metrics, val_metrics))
                if state.step % every == 0:
                    state.commit()
                if state.step >= cap:
                    break
            if state.step >= cap and state.sampler.processed_num < len(self.x_train):
                break
            train_metrics = _mean_metrics(_sum_across_ranks(epoch_sums))
            if train.validate:
                val_metrics = self._validate()
                if val_metrics[0] is not None:
                    rep.validation(epoch=state.epoch, global_step=state.step, loss=val_metrics[0],
                                   accuracy=val_metrics[1] or 0.0)
            state.epoch += 1
            state.sampler.set_epoch(state.epoch)
            state.commit()
        status = "completed" if state.epoch >= train.epochs else "max_steps"
        return self._finish_elastic(status, state, train_metrics, val_metrics)

    def _position(self, state: Any) -> Position:
        done = min(state.sampler.processed_num, len(self.x_train))
        per_step = self.train.batch_size * self.passes * self.ctx.size
        return Position(state.epoch, -(-done // per_step), state.step)

    def _checkpoint_extra(self) -> Dict[str, Any]:
        return {**super()._checkpoint_extra(), "elastic": {"processed": int(self.elastic_sampler.processed_num)}}

    def _summary_extra(self) -> Dict[str, Any]:
        return {**super()._summary_extra(), "elastic": self.world.summary()}

    def _epochs_done(self, position: Position) -> float:
        """Steps per epoch change with the world size: count epochs by samples instead."""
        done = min(self.elastic_sampler.processed_num, len(self.x_train))
        return self.elastic_sampler.epoch + done / max(1, len(self.x_train))

    def _finish_elastic(self, status: str, state: Any, train_metrics: Tuple[Optional[float], Optional[float]],
                        val_metrics: Tuple[Optional[float], Optional[float]]) -> Dict[str, Any]:
        return self._finish(status, self._position(state), self.resumed_from, self.samples, train_metrics,
                            val_metrics)
