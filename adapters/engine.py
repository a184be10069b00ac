"""The one managed-training loop, for every framework and both counting modes.

Epochs, optimizer steps, the progress and metrics window, interval checkpoints, the stop
agreement, ``max_steps``, the resume position, uneven data and the summary live here once. What a
framework does its own way sits behind :class:`.backend.Backend`; what fixed-size and elastic runs
count differently sits behind a counting strategy (:mod:`.counting`).

Per step the engine does only Python integer bookkeeping: collectives (metrics window, stop
agreement) happen every ``log_interval`` and every ``STOP_CHECK_EVERY`` steps, never per step, so
the managed loop runs as fast as a hand-written one.

Uneven data: when ranks have different numbers of batches in an epoch (iterable data, tf.data
shards, a user's own sharding), a rank that runs out calls Horovod's ``join`` and takes part in the
others' allreduces with zeros until they are done, so no rank hangs. Interval checkpoints (which need
every rank) wait until all ranks are present again; each rank's batch count is reported.
"""
from __future__ import annotations

import os
import time
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

from hvdrun_cli.contract import (ENV_PARAM_DUMP, STATUS_ALREADY_COMPLETE, STATUS_COMPLETED, STATUS_MAX_STEPS,
                                 STATUS_STOPPED)
from hvdrun_cli.errors import Problem, UserInputError
from hvdrun_cli.spec.model import JobSpec

from .backend import Backend, DataFacts, EpochPlan, StepDriver, Sums
from .base import LaunchInfo, RankContext, StopRequested, train_of
from .checkpoint import Checkpoint, CheckpointStore, Position, checkpoint_dir, warn
from .collective import root_decides
from .heartbeat import ProgressMarks
from .reporting import Reporter, dump_parameters
from .run_record import preload_writer
from .schedule import LrSchedule, make_schedule, scaled_lr
from .stopping import STOP_CHECK_EVERY, StopFlag

STOP_CHECK_NAME = "hvdjob.stop"
WINDOW_NAME = "hvdjob.window"

Metrics = Tuple[Optional[float], Optional[float]]


class WindowFacts(NamedTuple):
    """Where a metric window ended and how fast its steps were; its sums arrive later."""

    epoch: int
    global_step: int
    lr: float
    step_time_s: float
    wait_per_step_s: float


def mean_metrics(sums: Sums) -> Metrics:
    """(loss, accuracy) from summed (loss x n, correct, n)."""
    loss_sum, correct, count = sums
    if count <= 0:
        return None, None
    return loss_sum / count, correct / count


def one_hot(size: int, rank: int, value: float) -> List[float]:
    """A vector that, summed across ranks, gives every rank's ``value`` in rank order."""
    vector = [0.0] * size
    vector[rank] = float(value)
    return vector


def imbalance(counts: List[int]) -> float:
    """How much more the busiest rank read than the least busy one, as a fraction (0.0: even)."""
    if not counts or min(counts) <= 0:
        return 0.0 if not counts or max(counts) == 0 else float("inf")
    return max(counts) / min(counts) - 1.0


class Engine(StepDriver):
    """One run on one rank: set up, maybe resume, train epoch by epoch, finish (or stop) together."""

    def __init__(self, spec: JobSpec, ctx: RankContext, launch: LaunchInfo, backend: Backend, counting: Any) -> None:
        self.spec, self.ctx, self.launch, self.backend, self.counting = spec, ctx, launch, backend, counting
        self.train = train = train_of(spec)
        self.stop = StopFlag().install(counting.stop_signals)
        self.store = CheckpointStore(checkpoint_dir(spec), spec.checkpoint.keep, backend.checkpoint_suffix)
        if ctx.is_root and train.tensorboard:
            preload_writer(spec.framework)
        counting.before_build(self)
        self.facts: DataFacts = backend.build(spec, ctx, scaled_lr(train.lr, train.lr_scaling, ctx.size))
        self.passes = max(1, backend.batches_per_step)
        self.interval = int(spec.checkpoint.interval_steps or 0)
        self.log_interval = max(1, int(train.log_interval))
        self.cap = train.max_steps
        self.steps_per_epoch: Optional[int] = counting.steps_per_epoch(self)
        self.schedule: LrSchedule = self.make_schedule()
        self.reporter = Reporter(ctx, self.total_steps() or 0, train.epochs, train.log_interval,
                                 framework=spec.framework, tensorboard=train.tensorboard)
        self.marks = ProgressMarks()
        # Position: plain ints, updated in place every step (no per-step objects).
        self.epoch = self.step_in_epoch = self.global_step = 0
        self.skip_batches = 0  # this rank's batches of the current epoch done before a resume
        self.last_saved: Optional[int] = None
        self.resumed_from: Optional[int] = None
        self.resumed_path: Optional[str] = None
        self.stopping = False
        self.samples = 0  # all ranks, from the metrics window
        self.epoch_sums = [0.0, 0.0, 0.0]
        self.train_metrics: Metrics = (None, None)
        self.val_metrics: Metrics = (None, None)
        self.validated_at: Optional[int] = None
        self.batches_per_rank = [0] * ctx.size
        self.uneven_epochs = 0
        self.even = True
        self.safe_until = 0  # steps of the epoch (step_in_epoch) up to which every rank is still training
        self.lr = self.schedule.peak
        self._epoch_start_global = 0
        self._epoch_local_steps = 0
        self._cut = False
        self._awaiting_first_step = True
        self._batches_at_epoch_start = 0
        self._window_time = 0.0
        self._window_step = 0
        self._engine_wait = 0.0
        self._stop_check: Any = None  # a stop check in flight (backends that overlap collectives)
        self._window: Optional[Tuple[Any, WindowFacts]] = None  # a metric window in flight (likewise)

    # ----- set-up helpers -----------------------------------------------------------------------

    def make_schedule(self) -> LrSchedule:
        train = self.train
        if train.warmup_epochs > 0 and not self.steps_per_epoch:
            raise UserInputError(Problem("warmup in epochs needs data whose length is known in advance; "
                                         f"this {self.facts.kind} has none", key="train.warmup_epochs",
                                         got=train.warmup_epochs))
        return make_schedule(train.lr, train.lr_scaling, self.ctx.size, train.warmup_epochs,
                             self.steps_per_epoch or 0)

    def total_steps(self) -> Optional[int]:
        """Steps of the whole run, when the data's length is known (else only ``max_steps`` bounds it)."""
        total = self.train.epochs * self.steps_per_epoch if self.steps_per_epoch else None
        if self.cap is not None:
            total = self.cap if total is None else min(total, self.cap)
        return total

    def position(self) -> Position:
        position = Position(self.epoch, self.step_in_epoch, self.global_step)
        return position.normalized(self.steps_per_epoch or 0)

    def set_position(self, position: Position) -> None:
        position = position.normalized(self.steps_per_epoch or 0)
        self.epoch, self.step_in_epoch, self.global_step = position.epoch, position.step_in_epoch, position.global_step

    # ----- the run ------------------------------------------------------------------------------

    def run(self) -> Dict[str, Any]:
        """Train to the end; raises :class:`StopRequested` when the ranks agreed to stop."""
        return self.counting.run(self)

    def complete(self) -> bool:
        return self.epoch >= self.train.epochs or (self.cap is not None and self.global_step >= self.cap)

    def train_loop(self) -> Dict[str, Any]:
        """Epoch by epoch until done; the elastic strategy re-enters it after every reset."""
        self.counting.enter(self)
        if self.complete():
            return self.already_complete()
        self._window_time, self._window_step, self._engine_wait = time.perf_counter(), self.global_step, 0.0
        self._stop_check = self._window = None  # (re-)entered: after an elastic reset, collectives in flight are gone
        while not self.complete() and not self.stopping:
            plan = self.counting.epoch_plan(self)
            self.start_epoch(plan)
            self.backend.run_epoch(plan, self)
            self.end_epoch()
        if self.stopping:
            self.reporter.event(f"stop requested ({self.stop.signal_name or 'signal on another rank'}); "
                                f"saving at step {self.global_step}")
            return self.finish(STATUS_STOPPED)
        if self.train.validate and self.validated_at != self.global_step:
            self.validate()
        return self.finish(STATUS_COMPLETED if self.epoch >= self.train.epochs else STATUS_MAX_STEPS)

    # ----- epochs -------------------------------------------------------------------------------

    def start_epoch(self, plan: EpochPlan) -> None:
        """Find out whether every rank has as many batches as the others (one small allreduce)."""
        self._epoch_start_global = self.global_step
        self._epoch_local_steps = 0
        self._cut = False
        self._batches_at_epoch_start = self.backend.batches_done
        if self.counting.even_by_construction or self.facts.equal_shards:
            self.even, self.safe_until = True, 1 << 62
        else:
            local = self.backend.local_batches(plan)
            # Encoded +1 so that 0 means "cannot say" (an iterable of unknown length).
            encoded = one_hot(self.ctx.size, self.ctx.rank, 0 if local is None else local + 1)
            counts = [c - 1 for c in self.backend.allreduce(encoded, "sum", "hvdjob.batches")]
            known = [int(c) for c in counts if c >= 0]
            self.even = len(known) == len(counts) and len(set(known)) == 1
            fewest = min(known) if len(known) == len(counts) else 0
            self.safe_until = self.step_in_epoch + -(-fewest // self.passes) if fewest else self.step_in_epoch
            if self.even:
                self.safe_until = 1 << 62

    def end_epoch(self) -> None:
        """After this rank's last batch: wait for the others, agree on stop/steps, validate a finished epoch."""
        backend, size = self.backend, self.ctx.size
        # Collectives in flight end first: Horovod's join must not find this rank with one pending
        # (the ranks still training submit them when they pass the same step).
        self.collect_window()
        started = time.perf_counter()
        self.stopping = self.collect_stop_check() or self.stopping
        if not self.even:
            # Ranks that ran out stopped applying updates: take the state of the one that trained longest.
            backend.broadcast_state(True, backend.join())
        # One allreduce: stop and cut flags, each rank's steps and batches, the metric window's sums.
        vector = [1.0 if self.stopping else 0.0, 1.0 if self._cut else 0.0]
        vector += one_hot(size, self.ctx.rank, self._epoch_local_steps)
        vector += one_hot(size, self.ctx.rank, backend.batches_done)
        vector += list(backend.take_window())
        agreed = backend.allreduce(vector, "sum", "hvdjob.epoch")
        self._engine_wait += time.perf_counter() - started
        self.stopping, cut = agreed[0] > 0, agreed[1] > 0
        steps = [int(v) for v in agreed[2:2 + size]]
        self.batches_per_rank = [int(v) for v in agreed[2 + size:2 + 2 * size]]
        self.add_window(*agreed[2 + 2 * size:2 + 2 * size + 3])
        if not self.even:
            self.uneven_epochs += 1
            self.global_step = self._epoch_start_global + max(steps)
            self.step_in_epoch = self.step_in_epoch - self._epoch_local_steps + max(steps)
        self.train_metrics = mean_metrics(tuple(self.epoch_sums))  # type: ignore[arg-type]
        finished = not self.stopping and not cut
        if finished:
            self.epoch_sums = [0.0, 0.0, 0.0]
            if self.train.validate:
                self.validate()
            self.epoch, self.step_in_epoch = self.epoch + 1, 0
            self.skip_batches = 0
        self.counting.end_epoch(self, finished)
        if not self.even and finished and self.interval:
            if self.global_step // self.interval > (self.last_saved or 0) // self.interval:
                self.save()  # an interval boundary passed while some ranks had run out of batches

    # ----- steps (called by the backend) ----------------------------------------------------------

    def begin_step(self) -> float:
        if self._awaiting_first_step:  # start-up ends here (Keras traces its step function before this)
            self._awaiting_first_step = False
            self.reporter.first_step()
            self._window_time = time.perf_counter()
        self.lr = lr = self.schedule.at(self.global_step)
        return lr

    def end_step(self) -> bool:
        self.global_step += 1
        self.step_in_epoch += 1
        self._epoch_local_steps += 1
        step = self.global_step
        self.counting.count_step(self)
        self.marks.step_done(step)
        if self._window is not None:
            self.collect_window()
        if step % self.log_interval == 0:
            self.log_window()
        if self.interval and step % self.interval == 0 and self.step_in_epoch <= self.safe_until:
            self.save()
        if step % STOP_CHECK_EVERY == 0 and self.stop_agreed():
            self.stopping = True
            return False
        self.counting.after_step(self)
        if self.cap is not None and step >= self.cap:
            self._cut = True
            return False
        return True

    def stop_agreed(self) -> bool:
        """Whether any rank asked to stop. Where the backend overlaps collectives, the answer is the
        one started STOP_CHECK_EVERY steps ago (it travelled with the gradients meanwhile, so the
        step never waits for it) and this rank's flag goes out for the next check: a stop is then
        honoured within twice that many steps."""
        started = time.perf_counter()
        flag = [1.0 if self.stop.requested else 0.0]
        if self.backend.overlaps_collectives:
            agreed = self.collect_stop_check()
            self._stop_check = self.backend.allreduce_start(flag, "max", STOP_CHECK_NAME)
        else:
            agreed = self.backend.allreduce(flag, "max", STOP_CHECK_NAME)[0] > 0
        self._engine_wait += time.perf_counter() - started
        return agreed

    def collect_stop_check(self) -> bool:
        """The outcome of the stop check in flight (False when none is)."""
        pending, self._stop_check = self._stop_check, None
        return pending is not None and self.backend.allreduce_result(pending)[0] > 0

    def log_window(self) -> None:
        """End a metric window: one progress line and metrics record from every rank's sums.

        Where the backend overlaps collectives, the sums travel with the next step's gradients
        and the line is written when that step ends; no step waits for the window.
        """
        sums = self.backend.take_window()
        now = time.perf_counter()
        steps = max(1, self.global_step - self._window_step)
        gradient_wait = self.backend.take_sync_wait()
        facts = WindowFacts(self.epoch, self.global_step, self.lr, (now - self._window_time) / steps,
                            (self._engine_wait + (gradient_wait or 0.0)) / steps)
        self._engine_wait = 0.0
        self._window_time, self._window_step = now, self.global_step
        if self.backend.overlaps_collectives:
            self._window = (self.backend.allreduce_start(sums, "sum", WINDOW_NAME), facts)
        else:
            totals = self.backend.allreduce(sums, "sum", WINDOW_NAME)
            self._engine_wait += time.perf_counter() - now
            self.report_window(totals, facts)

    def collect_window(self) -> None:
        """Report the metric window in flight, if there is one."""
        if self._window is None:
            return
        (pending, facts), self._window = self._window, None
        started = time.perf_counter()
        totals = self.backend.allreduce_result(pending)
        self._engine_wait += time.perf_counter() - started
        self.report_window(totals, facts)

    def report_window(self, totals: Sequence[float], facts: WindowFacts) -> None:
        loss_sum, correct, count = totals
        self.add_window(loss_sum, correct, count)
        loss, accuracy = mean_metrics((loss_sum, correct, count))
        self.reporter.progress(epoch=facts.epoch, global_step=facts.global_step, loss=loss or 0.0,
                               accuracy=accuracy or 0.0, lr=facts.lr, samples_done=self.samples,
                               step_time_s=facts.step_time_s, allreduce_wait_s=facts.wait_per_step_s)

    def add_window(self, loss_sum: float, correct: float, count: float) -> None:
        self.samples += int(count)
        sums = self.epoch_sums
        sums[0] += loss_sum
        sums[1] += correct
        sums[2] += count

    def validate(self) -> None:
        """Each rank scores its own slice of the validation data; the sums are combined."""
        self.val_metrics = mean_metrics(tuple(self.backend.allreduce(self.backend.validate(), "sum",
                                                                     "hvdjob.validation")))  # type: ignore[arg-type]
        self.validated_at = self.global_step
        if self.val_metrics[0] is not None:
            self.reporter.validation(epoch=self.epoch, global_step=self.global_step, loss=self.val_metrics[0],
                                     accuracy=self.val_metrics[1] or 0.0)

    # ----- checkpoints ----------------------------------------------------------------------------

    def save(self) -> None:
        """Collective (RNG states are gathered from every rank); rank 0 writes the files.

        Every rank learns whether the write worked, so a full disk stops all ranks with one error.
        """
        position = self.position()
        rng = self.backend.allgather_object(self.backend.rng_state())
        meta = self.checkpoint_meta(position)
        root_decides(self.ctx, self.backend.broadcast_object, lambda: self._write(position, meta, rng))
        self.last_saved = self.global_step

    def checkpoint_meta(self, position: Position) -> Dict[str, Any]:
        meta: Dict[str, Any] = {
            "framework": self.backend.framework, "job": self.spec.name, "position": position.as_dict(),
            "world_size": self.ctx.size,
            "sampler": {"seed": self.train.seed, "num_replicas": self.ctx.size, "batch_size": self.train.batch_size,
                        "backward_passes_per_step": self.passes},
            "lr_schedule": {"peak": self.schedule.peak, "size": self.schedule.size,
                            "warmup_steps": self.schedule.warmup_steps},
        }
        if not self.even and position.step_in_epoch:
            # Ranks stopped at different batches of this epoch: each resumes after its own.
            meta["rank_batches_in_epoch"] = self._rank_batches_in_epoch()
        meta.update(self.counting.checkpoint_meta(self))
        return meta

    def _rank_batches_in_epoch(self) -> List[int]:
        done = self.skip_batches + self._epoch_batches_local()
        return [int(v) for v in self.backend.allreduce(one_hot(self.ctx.size, self.ctx.rank, done), "sum",
                                                       "hvdjob.rank_batches")]

    def _epoch_batches_local(self) -> int:
        return self.backend.batches_done - self._batches_at_epoch_start

    def _write(self, position: Position, meta: Dict[str, Any], rng: List[Any]) -> None:
        writer, extra = self.backend.checkpoint_writer(meta, rng)
        path = self.store.save(position.global_step, writer, {**meta, **extra})
        self.reporter.event(f"checkpoint saved: {path}")

    def load_on_root(self) -> Optional[Dict[str, Any]]:
        """Rank 0: the newest usable checkpoint (or the one named), applied to model and optimizer."""
        mode = self.spec.checkpoint.resume
        if mode == "never":
            return None
        read = self.backend.read_checkpoint
        found = self.store.load_newest(read) if mode == "auto" else self.store.load_path(mode, read)
        if found is None:
            return None
        checkpoint, payload = found
        return self.apply(checkpoint, payload)

    def apply(self, checkpoint: Checkpoint, payload: Any) -> Dict[str, Any]:
        try:
            loaded = self.backend.apply_checkpoint(checkpoint, payload)
        except (RuntimeError, ValueError, KeyError) as exc:
            raise UserInputError(Problem(f"checkpoint does not fit this model/optimizer ({exc}); use "
                                         "'resume: never' or another checkpoint.dir", key="checkpoint.resume",
                                         got=checkpoint.payload)) from exc
        position = loaded.position or checkpoint.meta.get("position")
        if not position:
            raise UserInputError(Problem("checkpoint has no sidecar with its position", key="checkpoint.resume",
                                         got=checkpoint.payload))
        return {"position": dict(position), "rng": loaded.rng, "path": checkpoint.payload,
                "optimizer_has_state": loaded.optimizer_has_state, "meta": checkpoint.meta}

    def resume(self) -> None:
        """Load on rank 0 and broadcast, so every rank continues from rank 0's state."""
        info = root_decides(self.ctx, self.backend.broadcast_object, self.load_on_root)
        self.backend.broadcast_state(bool(info and info["optimizer_has_state"]))
        if info is None:
            return
        rng = info["rng"]
        if rng and len(rng) == self.ctx.size:
            self.backend.set_rng_state(rng[self.ctx.rank])
        elif rng and self.ctx.is_root:
            warn(f"checkpoint was written by {len(rng)} ranks, now {self.ctx.size}: data order and random "
                 "streams differ from an uninterrupted run")
        self.set_position(Position.from_dict(info["position"]))
        per_rank = info["meta"].get("rank_batches_in_epoch")
        if self.step_in_epoch and isinstance(per_rank, list) and len(per_rank) == self.ctx.size:
            self.skip_batches = int(per_rank[self.ctx.rank])
        else:
            self.skip_batches = self.step_in_epoch * self.passes
        self.last_saved = self.resumed_from = self.global_step
        self.resumed_path = info["path"]
        if not self.complete():
            self.reporter.event(f"resumed from {info['path']} at step {self.global_step} "
                                f"(epoch {self.epoch + 1}, step {self.step_in_epoch} of the epoch)")

    # ----- the end --------------------------------------------------------------------------------

    def already_complete(self) -> Dict[str, Any]:
        """The checkpoint is at the run's last step: say so, train nothing, exit 0."""
        done = (f"all {self.train.epochs} epochs" if self.epoch >= self.train.epochs
                else f"train.max_steps {self.cap}")
        self.reporter.event(
            f"job {self.spec.name} is already complete: checkpoint {self.resumed_path} is at step {self.global_step}"
            f" ({done}), so there is nothing to train. To train further raise train.epochs or train.max_steps "
            "(e.g. --set train.epochs=20); to start over use --set checkpoint.resume=never or another "
            "checkpoint.dir")
        summary = self.summary(STATUS_ALREADY_COMPLETE)
        self.backend.join()
        return summary

    def finish(self, status: str) -> Dict[str, Any]:
        """Final checkpoint, summary and parameter dump, then a barrier so nobody exits early.

        The barrier matters: a launcher tears the job down when the first rank exits, which must
        not happen while rank 0 is still writing.
        """
        self.reporter.training_ended()
        if self.last_saved != self.global_step:
            self.save()
        summary = self.summary(status)
        if self.uneven_epochs and self.ctx.is_root:
            counts = ", ".join(f"rank {r}: {c}" for r, c in enumerate(self.batches_per_rank))
            self.reporter.event(f"batches per rank: {counts} (imbalance {imbalance(self.batches_per_rank):.1%}; "
                                f"{self.uneven_epochs} epoch(s) uneven, ranks that ran out waited in hvd.join)")
        dump_dir = os.environ.get(ENV_PARAM_DUMP)
        if dump_dir:
            dump_parameters(dump_dir, self.ctx.rank, self.backend.parameters())
        self.backend.join()
        if status == STATUS_STOPPED:
            raise StopRequested(summary)
        return summary

    def summary(self, status: str) -> Dict[str, Any]:
        extra: Dict[str, Any] = {
            "threads_per_rank": self.launch.threads, "steps_per_epoch": self.steps_per_epoch,
            "data": self.facts.kind, "batches_per_rank": list(self.batches_per_rank),
            "batch_imbalance": round(imbalance(self.batches_per_rank), 6), "uneven_epochs": self.uneven_epochs,
        }
        extra.update(self.counting.summary_extra(self))
        checkpoint = self.store.payload_path(self.global_step) if self.last_saved is not None else None
        return self.reporter.summary(
            framework=self.backend.framework, status=status, steps=self.global_step,
            epochs_done=self.counting.epochs_done(self), samples=self.samples,
            train_loss=self.train_metrics[0], train_accuracy=self.train_metrics[1], val_loss=self.val_metrics[0],
            val_accuracy=self.val_metrics[1], resumed_from_step=self.resumed_from,
            process_start=self.launch.process_start_unix_time, checkpoint=checkpoint, extra=extra)
