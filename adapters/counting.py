"""How a run counts its way through the data: a fixed world, or Horovod's elastic mode.

Two small strategies the engine calls at fixed points (before the build, when entering the loop,
per epoch, per step, at the end of an epoch). Everything else about training is the engine's.

* :class:`FixedCounting`: the world size never changes; the epoch order is the backend's seeded
  order (``DistributedSampler(seed).set_epoch(epoch)``), so a resume skips the steps already done.
* :class:`ElasticCounting`: ``horovodrun`` elastic mode. Horovod's elastic state (model, optimizer,
  epoch, step, samples of the epoch done) is committed every few steps; after a reset the epoch's
  remaining samples are re-sharded over the current ranks. All collectives happen inside the
  elastic training function, where every current worker is in step.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Dict, Optional

from hvdrun_cli.errors import Problem, UserInputError

from .backend import EpochPlan
from .checkpoint import Position
from .collective import root_decides
from .elastic import ELASTIC_STOP_SIGNALS, WorldLog, commit_every, remaining_indices, resumed_processed, shard, \
    steps_in
from .stopping import STOP_SIGNALS

if TYPE_CHECKING:
    from .engine import Engine


class FixedCounting:
    """A fixed set of ranks, from start to finish."""

    stop_signals = STOP_SIGNALS
    even_by_construction = False  # data of unknown or uneven length is possible: ask at each epoch

    def before_build(self, engine: "Engine") -> None:
        """Collective: fail on every rank, before training, when rank 0 could not save checkpoints."""
        root_decides(engine.ctx, engine.backend.broadcast_object, engine.store.ensure_writable)

    def steps_per_epoch(self, engine: "Engine") -> Optional[int]:
        """The longest rank's steps in a full epoch (one allreduce), None when a rank cannot say."""
        local = engine.backend.local_batches(EpochPlan(0))
        value = -1.0 if local is None else float(-(-local // engine.passes))
        agreed = engine.backend.allreduce([value, -value], "max", "hvdjob.steps_per_epoch")
        if agreed[1] > 0:  # some rank said -1: unknown
            return None
        return int(agreed[0])

    def run(self, engine: "Engine") -> Dict[str, Any]:
        engine.resume()
        return engine.train_loop()

    def enter(self, engine: "Engine") -> None:
        pass

    def epoch_plan(self, engine: "Engine") -> EpochPlan:
        left = None if engine.cap is None else engine.cap - engine.global_step
        return EpochPlan(engine.epoch, skip_batches=engine.skip_batches, max_steps=left)

    def count_step(self, engine: "Engine") -> None:
        pass

    def after_step(self, engine: "Engine") -> None:
        pass

    def end_epoch(self, engine: "Engine", finished: bool) -> None:
        pass

    def checkpoint_meta(self, engine: "Engine") -> Dict[str, Any]:
        return {}

    def epochs_done(self, engine: "Engine") -> float:
        if engine.steps_per_epoch:
            return engine.global_step / engine.steps_per_epoch
        return float(engine.epoch)

    def summary_extra(self, engine: "Engine") -> Dict[str, Any]:
        return {}


class ElasticCounting:
    """Training under ``horovodrun`` elastic mode: survives lost workers and takes in new ones."""

    # SIGTERM stays fatal: Horovod's driver ends a worker it removes with it.
    stop_signals = ELASTIC_STOP_SIGNALS
    even_by_construction = True  # the remaining samples are split evenly, padded to equal shares

    def __init__(self) -> None:
        self.state: Any = None
        self.world = WorldLog()

    def before_build(self, engine: "Engine") -> None:
        pass  # collective: done inside the elastic training function instead

    def samples(self, engine: "Engine") -> int:
        n = engine.facts.train_samples
        if n is None or not engine.facts.map_style:
            raise UserInputError(Problem(f"elastic mode needs data with random access by index (arrays or a "
                                         f"map-style Dataset); this job's data is {engine.facts.kind}",
                                         key="train.data", got=engine.spec.train.data if engine.spec.train else None))
        return n

    def steps_per_epoch(self, engine: "Engine") -> Optional[int]:
        return steps_in(-(-self.samples(engine) // engine.ctx.size), engine.train.batch_size, engine.passes)

    def run(self, engine: "Engine") -> Dict[str, Any]:
        counters = self.initial_counters(engine)
        self.state = engine.backend.elastic_state(**counters)
        self.state.register_reset_callbacks([lambda: self.on_reset(engine)])
        return engine.backend.elastic_run(lambda state: engine.train_loop())(self.state)

    def initial_counters(self, engine: "Engine") -> Dict[str, int]:
        """Epoch, step and samples done to start from: rank 0's newest file checkpoint, if any.

        Local to this process (no collective): the first ``state.sync()`` broadcasts rank 0's values.
        """
        counters = {"epoch": 0, "step": 0, "processed": 0}
        if engine.ctx.rank != 0 or engine.spec.checkpoint.resume == "never":
            return counters
        mode = engine.spec.checkpoint.resume
        read = engine.backend.read_checkpoint
        found = engine.store.load_newest(read) if mode == "auto" else engine.store.load_path(mode, read)
        if found is None:
            return counters
        checkpoint, payload = found
        info = engine.apply(checkpoint, payload)
        position = Position.from_dict(info["position"])
        n = self.samples(engine)
        processed = resumed_processed({**checkpoint.meta, **info["meta"]}, engine.train.batch_size, engine.passes, n)
        epoch = position.epoch
        if processed >= n:
            epoch, processed = epoch + 1, 0
        engine.resumed_from = engine.last_saved = position.global_step
        engine.resumed_path = checkpoint.payload
        engine.reporter.event(f"resumed from {checkpoint.payload} at step {position.global_step} "
                              f"(epoch {epoch + 1}, {processed} samples of it done)")
        return {"epoch": epoch, "step": position.global_step, "processed": processed}

    def on_reset(self, engine: "Engine") -> None:
        """After workers came or went: new rank and size, learning rate scaled to the new size."""
        rank, size, local_rank, local_size = engine.backend.elastic_world()
        engine.ctx = dataclasses.replace(engine.ctx, rank=rank, size=size, local_rank=local_rank,
                                         local_size=local_size)
        engine.reporter.ctx, engine.reporter.enabled = engine.ctx, engine.ctx.is_root
        engine.backend.update_world(engine.ctx)
        engine.batches_per_rank = [0] * size
        engine.steps_per_epoch = self.steps_per_epoch(engine)
        engine.schedule = engine.make_schedule()

    def enter(self, engine: "Engine") -> None:
        """At every (re-)entry of the training function: the world now, and the position of the last commit."""
        state = self.state
        self.on_reset(engine)
        root_decides(engine.ctx, engine.backend.broadcast_object, engine.store.ensure_writable)
        engine.last_saved, engine.resumed_from, engine.resumed_path = engine.backend.broadcast_object(
            (engine.last_saved, engine.resumed_from, engine.resumed_path), 0)
        message = self.world.record(state.step, engine.ctx.size)
        if message:
            engine.reporter.event(message)
        n, train = self.samples(engine), engine.train
        per_step = train.batch_size * engine.passes * engine.ctx.size
        engine.epoch, engine.global_step = state.epoch, state.step
        engine.step_in_epoch = -(-min(state.processed, n) // per_step)
        engine.stopping = False
        left = (steps_in(-(-max(0, n - state.processed) // engine.ctx.size), train.batch_size, engine.passes)
                + max(0, train.epochs - state.epoch - 1) * (engine.steps_per_epoch or 0))
        total = state.step + left
        engine.reporter.total_steps = int(total if engine.cap is None else min(engine.cap, total))

    def epoch_plan(self, engine: "Engine") -> EpochPlan:
        state, train = self.state, engine.train
        mine = shard(remaining_indices(self.samples(engine), train.seed, state.epoch, state.processed),
                     engine.ctx.size, engine.ctx.rank)
        left = None if engine.cap is None else engine.cap - engine.global_step
        return EpochPlan(state.epoch, indices=mine, max_steps=left)

    def count_step(self, engine: "Engine") -> None:
        state = self.state
        state.step = engine.global_step
        state.processed += engine.train.batch_size * engine.passes * engine.ctx.size

    def after_step(self, engine: "Engine") -> None:
        if engine.global_step % commit_every(engine.train) == 0:
            self.state.commit()  # may raise HostsUpdatedInterrupt: hvd.elastic.run re-enters the training function

    def end_epoch(self, engine: "Engine", finished: bool) -> None:
        if finished:
            self.state.epoch, self.state.processed = self.state.epoch + 1, 0
            self.state.commit()

    def checkpoint_meta(self, engine: "Engine") -> Dict[str, Any]:
        return {"elastic": {"processed": int(min(self.state.processed, self.samples(engine)))}}

    def epochs_done(self, engine: "Engine") -> float:
        """Steps per epoch change with the world size: count epochs by samples instead."""
        n = self.samples(engine)
        return self.state.epoch + min(self.state.processed, n) / max(1, n)

    def summary_extra(self, engine: "Engine") -> Dict[str, Any]:
        return {"elastic": self.world.summary()}


def counting_for(spec: Any) -> Any:
    """The strategy a spec asks for."""
    return ElasticCounting() if spec.elastic is not None else FixedCounting()

