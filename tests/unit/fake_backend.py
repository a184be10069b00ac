"""A framework-free backend for driving the training engine in unit tests (no Horovod, no torch).

Ranks are threads of one process; :class:`FakeWorld` plays Horovod's part: a collective completes
when every rank that has not joined submitted it (joined ranks add zeros, as with ``hvd.join``), and
ranks that submit different collectives at the same time are an error instead of a hang.
The "model" is one number updated by every batch, so a resumed run that trains on exactly the
batches an uninterrupted run would have ends with exactly the same weight.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from hvdrun_cli.adapters.backend import Backend, DataFacts, EpochPlan, Loaded, StepDriver, Sums
from hvdrun_cli.adapters.base import LaunchInfo, RankContext
from hvdrun_cli.adapters.checkpoint import Checkpoint
from hvdrun_cli.spec.model import JobSpec


class CollectiveMismatch(AssertionError):
    """Ranks disagreed on the next collective (Horovod would hang or fail)."""


class FakeWorld:
    """Collectives between rank threads, with Horovod's join semantics for allreduce."""

    def __init__(self, size: int, timeout: float = 10.0) -> None:
        self.size = size
        self.timeout = timeout
        self.cond = threading.Condition()
        self.generation = 0
        self.submitted: Dict[int, Tuple[str, Any]] = {}
        self.result: Any = None
        self.joined: set = set()
        self.join_generation = 0
        self.log: List[str] = []  # names of completed collectives, in order

    def _active(self) -> List[int]:
        return [r for r in range(self.size) if r not in self.joined]

    def collective(self, rank: int, name: str, value: Any, combine: Callable[[Dict[int, Any]], Any],
                   joinable: bool) -> Any:
        with self.cond:
            generation = self.generation
            self.submitted[rank] = (name, value, combine, joinable)
            self._maybe_complete()
            while self.generation == generation:
                if not self.cond.wait(self.timeout):
                    raise TimeoutError(f"rank {rank} waits in {name}; submitted: {self._names()}, "
                                       f"joined: {sorted(self.joined)}")
            return self.result

    def _names(self) -> Dict[int, str]:
        return {r: entry[0] for r, entry in self.submitted.items()}

    def _maybe_complete(self) -> None:
        active = self._active()
        if not active or any(r not in self.submitted for r in active):
            return
        names = {self.submitted[r][0] for r in active}
        if len(names) != 1:
            raise CollectiveMismatch(f"ranks submitted different collectives: {self._names()}")
        _, _, combine, joinable = self.submitted[active[0]]
        if self.joined and not joinable:
            raise CollectiveMismatch(f"{names.pop()} is not allowed while ranks {sorted(self.joined)} have joined")
        self.result = combine({r: entry[1] for r, entry in self.submitted.items()})
        self.log.append(names.pop())
        self.submitted = {}
        self.generation += 1
        self.cond.notify_all()

    def allreduce(self, rank: int, values: Sequence[float], op: str, name: str) -> List[float]:
        width = len(values)

        def combine(parts: Dict[int, Any]) -> List[float]:
            rows = [parts.get(r, [0.0] * width) for r in range(self.size)]  # joined ranks add zeros
            pick = sum if op == "sum" else max
            return [float(pick(column)) for column in zip(*rows)]

        return self.collective(rank, name, list(values), combine, joinable=True)

    def broadcast(self, rank: int, obj: Any, root: int) -> Any:
        return self.collective(rank, "broadcast", obj, lambda parts: parts[root], joinable=False)

    def allgather(self, rank: int, obj: Any) -> List[Any]:
        return self.collective(rank, "allgather", obj, lambda parts: [parts[r] for r in range(self.size)],
                               joinable=False)

    def join(self, rank: int) -> int:
        """Like ``hvd.join``: returns the rank that joined last."""
        with self.cond:
            generation = self.join_generation
            self.joined.add(rank)
            self.last_joined = rank
            if self.submitted:
                self._maybe_complete()  # the others' pending allreduce no longer waits for this rank
            if len(self.joined) == self.size:
                self.join_result = self.last_joined
                self.joined = set()
                self.join_generation += 1
                self.log.append("join")
                self.cond.notify_all()
            while self.join_generation == generation:
                if not self.cond.wait(self.timeout):
                    raise TimeoutError(f"rank {rank} waits in join; submitted: {self._names()}")
            return self.join_result


@dataclass
class FakeData:
    """Per-rank batch counts of one epoch (equal for even data); each batch has ``batch_size`` samples."""

    batches: Sequence[int]
    batch_size: int = 4
    val_samples: int = 8
    known_length: bool = True
    map_style: bool = True

    @property
    def train_samples(self) -> int:
        return max(self.batches) * self.batch_size * len(self.batches)


@dataclass
class FakeBackend(Backend):
    """One rank of a fake framework."""

    data: FakeData
    world: Optional[FakeWorld] = None
    rank: int = 0
    passes: int = 1
    framework: str = "fake"
    checkpoint_suffix: str = ".fake"
    weight: float = 1.0
    read: List[Tuple[int, int]] = field(default_factory=list)  # (epoch, batch index) of every batch trained
    lrs: List[float] = field(default_factory=list)
    window: List[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    rng: int = 0
    joins: int = 0
    on_batch: Optional[Callable[[int], None]] = None  # called with the global batch count, e.g. to signal

    def __post_init__(self) -> None:
        self.batches_per_step = self.passes
        self.batches_done = 0

    @property
    def size(self) -> int:
        return self.world.size if self.world else 1

    def init(self, launch: LaunchInfo) -> RankContext:
        return RankContext(self.rank, self.size, self.rank, self.size, launch.run_dir, launch.attempt)

    def build(self, spec: JobSpec, ctx: RankContext, lr: float) -> DataFacts:
        kind = "arrays" if self.data.known_length else "IterableDataset"
        return DataFacts(self.data.train_samples if self.data.known_length else None, self.data.map_style, kind)

    def _epoch_order(self, plan: EpochPlan) -> List[int]:
        if plan.indices is not None:
            return list(range(-(-len(plan.indices) // self.data.batch_size)))
        return list(range(self.data.batches[self.rank]))[plan.skip_batches:]

    def local_batches(self, plan: EpochPlan) -> Optional[int]:
        return len(self._epoch_order(plan)) if self.data.known_length else None

    def run_epoch(self, plan: EpochPlan, driver: StepDriver) -> None:
        order = self._epoch_order(plan)
        for start in range(0, len(order), self.passes):
            lr = driver.begin_step()
            self.lrs.append(lr)
            for index in order[start:start + self.passes]:
                self.read.append((plan.epoch, index))
                self.batches_done += 1
                self.weight = self.weight * 0.5 + lr * (index + 1) + plan.epoch
                self.rng += 1
                bs = self.data.batch_size
                self.window[0] += 0.5 * bs
                self.window[1] += bs
                self.window[2] += bs
                if self.on_batch:
                    self.on_batch(self.batches_done)
            if not driver.end_step():
                return

    def take_window(self) -> Sums:
        window, self.window = self.window, [0.0, 0.0, 0.0]
        return window[0], window[1], window[2]

    def validate(self) -> Sums:
        n = self.data.val_samples
        return 0.25 * n, 0.9 * n, n

    def allreduce(self, values: Sequence[float], op: str, name: str) -> List[float]:
        return self.world.allreduce(self.rank, values, op, name) if self.world else [float(v) for v in values]

    def broadcast_object(self, obj: Any, root_rank: int = 0) -> Any:
        return self.world.broadcast(self.rank, obj, root_rank) if self.world else obj

    def allgather_object(self, obj: Any) -> List[Any]:
        return self.world.allgather(self.rank, obj) if self.world else [obj]

    def join(self) -> int:
        self.joins += 1
        return self.world.join(self.rank) if self.world else 0

    def broadcast_state(self, optimizer_has_state: bool, root_rank: int = 0) -> None:
        self.weight = self.broadcast_object(self.weight, root_rank)

    def rng_state(self) -> Any:
        return self.rng

    def set_rng_state(self, state: Any) -> None:
        self.rng = int(state)

    def checkpoint_writer(self, meta: Mapping[str, Any], rng: List[Any]
                          ) -> Tuple[Callable[[BinaryIO], None], Dict[str, Any]]:
        text = json.dumps({"weight": self.weight, "rng": rng}).encode()
        return (lambda f: f.write(text)), {"kind": "fake"}

    def read_checkpoint(self, checkpoint: Checkpoint) -> Any:
        with open(checkpoint.payload, encoding="utf-8") as f:
            return json.load(f)

    def apply_checkpoint(self, checkpoint: Checkpoint, payload: Any) -> Loaded:
        self.weight = float(payload["weight"])
        return Loaded(position={}, rng=payload["rng"], optimizer_has_state=True)

    def parameters(self) -> List[Any]:
        return [[self.weight]]
