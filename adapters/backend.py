"""The small interface between the one training engine and a framework (PyTorch, Keras).

The engine (:mod:`.engine`) owns everything that is the same in every framework: counting steps
and epochs, the progress and metrics window, interval checkpoints, the stop agreement, ``max_steps``,
the resume position, uneven data and the summary. A backend owns only what a framework does its own
way: starting Horovod, building model/data/optimizer, running the optimizer steps of one epoch,
small allreduces, and turning its state into checkpoint bytes and back.

A backend calls the engine's :class:`StepDriver` around each optimizer step and never decides when
to log, save or stop: that is how one loop serves both frameworks.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from hvdrun_cli.spec.model import JobSpec

from .base import LaunchInfo, RankContext
from .checkpoint import Checkpoint

# (loss summed over samples, correct predictions, samples): additive, so ranks and windows add up.
Sums = Tuple[float, float, float]


@dataclass(frozen=True)
class EpochPlan:
    """Which part of an epoch this rank trains next.

    ``skip_batches``: batches of this rank's epoch order already trained (a resume mid-epoch);
    map-style data skips them by sampler offset, without reading them.
    ``indices``: elastic mode's explicit sample list for this rank (the epoch's remaining samples,
    re-sharded over the current ranks); None means the backend's own epoch order.
    ``max_steps``: at most this many optimizer steps in this epoch (the ``max_steps`` cap).
    """

    epoch: int
    skip_batches: int = 0
    indices: Optional[Sequence[int]] = None
    max_steps: Optional[int] = None


class StepDriver(abc.ABC):
    """What a backend calls around each optimizer step (implemented by the engine)."""

    @abc.abstractmethod
    def begin_step(self) -> float:
        """Before an optimizer step: returns the learning rate to use for it."""

    @abc.abstractmethod
    def end_step(self) -> bool:
        """After an optimizer step: False when training must stop now (stop agreed, step cap)."""


@dataclass(frozen=True)
class Loaded:
    """A checkpoint read on rank 0 and applied to its model and optimizer."""

    position: Mapping[str, Any]
    rng: Optional[List[Any]]  # one state per rank that wrote it
    optimizer_has_state: bool


@dataclass(frozen=True)
class DataFacts:
    """What the engine must know about the training data, from the backend's pipeline."""

    train_samples: Optional[int]  # None for iterable data of unknown length
    map_style: bool  # random access by index: elastic re-sharding and resume by offset work
    kind: str  # "arrays", "map-style Dataset", "IterableDataset", "tf.data" (for messages)
    # Every rank gets as many batches in every epoch (padded shards): the engine then skips asking.
    equal_shards: bool = False


class Backend(abc.ABC):
    """One framework behind the engine."""

    framework: str = ""
    checkpoint_suffix: str = ""
    batches_per_step: int = 1  # batches one optimizer step consumes (PyTorch: backward_passes_per_step)
    batches_done: int = 0  # batches this rank has read since the run began (its share of uneven data)

    # ----- set-up -------------------------------------------------------------------------------

    @abc.abstractmethod
    def init(self, launch: LaunchInfo) -> RankContext:
        """Start Horovod, size thread pools, pin the device; return where this rank sits."""

    @abc.abstractmethod
    def build(self, spec: JobSpec, ctx: RankContext, lr: float) -> DataFacts:
        """Seed, data pipeline, model, optimizer (created with rate ``lr``; the engine sets it per step)."""

    @abc.abstractmethod
    def local_batches(self, plan: EpochPlan) -> Optional[int]:
        """Batches this rank will read in ``plan`` (None when the data cannot say in advance)."""

    def update_world(self, ctx: RankContext) -> None:
        """Elastic mode: rank and size changed after a reset."""

    # ----- training -----------------------------------------------------------------------------

    @abc.abstractmethod
    def run_epoch(self, plan: EpochPlan, driver: StepDriver) -> None:
        """Train on the plan's batches, calling the driver around every optimizer step."""

    @abc.abstractmethod
    def take_window(self) -> Sums:
        """This rank's metric sums since the last call (and reset them); no collective."""

    def take_sync_wait(self) -> Optional[float]:
        """Seconds this rank spent waiting for gradient allreduces since the last call (None: unknown)."""
        return None

    @abc.abstractmethod
    def validate(self) -> Sums:
        """This rank's metric sums over its slice of the validation data; no collective."""

    # ----- collectives (small host values) ------------------------------------------------------

    @abc.abstractmethod
    def allreduce(self, values: Sequence[float], op: str, name: str) -> List[float]:
        """Sum (``op="sum"``) or maximum (``"max"``) of a short vector across ranks."""

    # Whether allreduce_start returns before the result is there (it then travels with the gradients).
    overlaps_collectives: bool = False

    def allreduce_start(self, values: Sequence[float], op: str, name: str) -> Any:
        """Begin :meth:`allreduce`; :meth:`allreduce_result` gives its values (here: done at once)."""
        return self.allreduce(values, op, name)

    def allreduce_result(self, pending: Any) -> List[float]:
        """The values of an :meth:`allreduce_start`, waiting for them if need be."""
        return list(pending)

    @abc.abstractmethod
    def broadcast_object(self, obj: Any, root_rank: int = 0) -> Any:
        """A small picklable value from ``root_rank`` on every rank."""

    @abc.abstractmethod
    def allgather_object(self, obj: Any) -> List[Any]:
        """Every rank's value, in rank order."""

    @abc.abstractmethod
    def join(self) -> int:
        """Wait until every rank has run out of batches; meanwhile take part in the others' allreduces
        (with zeros). Returns the rank that joined last, the one that trained longest."""

    @abc.abstractmethod
    def broadcast_state(self, optimizer_has_state: bool, root_rank: int = 0) -> None:
        """Make every rank's model and optimizer equal to ``root_rank``'s."""

    # ----- state --------------------------------------------------------------------------------

    @abc.abstractmethod
    def rng_state(self) -> Any:
        """This rank's random generators (gathered to rank 0 for a checkpoint)."""

    @abc.abstractmethod
    def set_rng_state(self, state: Any) -> None:
        """Restore what :meth:`rng_state` returned."""

    @abc.abstractmethod
    def checkpoint_writer(self, meta: Mapping[str, Any], rng: List[Any]
                          ) -> Tuple[Callable[[BinaryIO], None], Dict[str, Any]]:
        """(payload writer, extra sidecar fields) for a checkpoint of the current state (rank 0)."""

    @abc.abstractmethod
    def read_checkpoint(self, checkpoint: Checkpoint) -> Any:
        """The payload's contents; raises when the file is damaged or not this framework's (it is then skipped)."""

    @abc.abstractmethod
    def apply_checkpoint(self, checkpoint: Checkpoint, payload: Any) -> Loaded:
        """Load what :meth:`read_checkpoint` returned into this rank's model and optimizer (rank 0).

        Raises ValueError (or the framework's error) when it does not fit this model or optimizer.
        """

    @abc.abstractmethod
    def parameters(self) -> List[Any]:
        """The model's parameter arrays, for ``HVDJOB_PARAM_DUMP``."""

    # ----- elastic ------------------------------------------------------------------------------

    def elastic_state(self, **counters: int) -> Any:
        """Horovod's elastic state object holding model, optimizer and ``counters``."""
        raise NotImplementedError(f"{self.framework}: elastic mode is not supported")

    def elastic_run(self, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """``hvd.elastic.run(fn)`` of this framework."""
        raise NotImplementedError(f"{self.framework}: elastic mode is not supported")

    def elastic_world(self) -> Tuple[int, int, int, int]:
        """(rank, size, local_rank, local_size) now (after an elastic reset)."""
        raise NotImplementedError(f"{self.framework}: elastic mode is not supported")
