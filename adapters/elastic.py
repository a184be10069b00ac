"""Elastic training on the rank side: what the PyTorch and Keras adapters share under Horovod's elastic mode.

Horovod's elastic API (``hvd.elastic.run`` around the training function, a ``State`` holding model,
optimizer and counters, ``state.commit()`` every few steps) restores the last commit on every
surviving worker when a peer dies, and re-runs the training function after workers join or leave.
For that to work the training function must be the only place with collectives, and the data a
rank trains on must follow the current world size. This module holds the framework-free parts:

* which signals mean "checkpoint and stop" (not SIGTERM: Horovod ends a worker it drops with it);
* the commit cadence;
* the epoch's remaining samples, re-sharded over the current ranks (the Keras side; the PyTorch
  side uses Horovod's own ``ElasticSampler``, which follows the same rule);
* a record of world-size changes for the log and the run summary.
"""
from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from hvdrun_cli.spec.model import TrainSpec
from hvdrun_cli.spec.signals import stop_signal

# SIGTERM stays fatal in elastic workers: Horovod's driver sends it to a worker it removes, and
# that worker must go at once, not drag the others into a checkpoint-and-stop. USR1 is how the
# launcher passes on a Ctrl-C; the spec's stop signal (slurm.signal) stops them as well.
ELASTIC_STOP_SIGNALS = tuple(s for s in dict.fromkeys((signal.SIGUSR1, stop_signal(os.environ)))
                             if s != signal.SIGTERM)


def commit_every(train: TrainSpec) -> int:
    """Steps between commits (in memory): the work a lost worker can cost the others.

    A commit copies the state and checks for host changes (a small collective), so it follows the
    logging interval rather than every step.
    """
    return max(1, int(train.log_interval))


def remaining_indices(n: int, seed: int, epoch: int, processed: int) -> np.ndarray:
    """The epoch's seeded sample order with the first ``processed`` samples (already trained on) removed."""
    order = np.random.default_rng([seed, epoch]).permutation(n)
    return order[min(max(0, processed), n):]


def shard(indices: np.ndarray, size: int, rank: int) -> np.ndarray:
    """This rank's part of ``indices``, padded by repetition so every rank gets as many samples."""
    if len(indices) == 0:
        return indices
    per_rank = -(-len(indices) // size)
    padded = np.resize(indices, per_rank * size)
    return padded[rank::size]


def steps_in(samples_per_rank: int, batch_size: int, passes: int = 1) -> int:
    """Optimizer steps needed for ``samples_per_rank`` samples on each rank."""
    batches = -(-samples_per_rank // batch_size)
    return -(-batches // max(1, passes))


@dataclass
class WorldLog:
    """World sizes seen during the run, as ``(global step, size)`` from the start and after each reset."""

    changes: List[Tuple[int, int]] = field(default_factory=list)

    def record(self, step: int, size: int) -> Optional[str]:
        """Note the size at ``step``; a message for the log when it differs from the last one."""
        previous = self.changes[-1][1] if self.changes else None
        self.changes.append((step, size))
        if previous is None or previous == size:
            return None
        direction = "shrank" if size < previous else "grew"
        return (f"workers {direction} from {previous} to {size}; continuing from the last commit at step {step}, "
                f"data re-sharded over {size} rank{'s' if size != 1 else ''}")

    @property
    def resets(self) -> int:
        return max(0, len(self.changes) - 1)

    def summary(self) -> Dict[str, Any]:
        return {"world_sizes": [list(c) for c in self.changes], "resets": self.resets}


def resumed_processed(meta: Mapping[str, Any], batch_size: int, passes: int, n: int) -> int:
    """Samples of the current epoch a checkpoint had already trained on.

    Elastic checkpoints record it; one from a fixed-size run is converted from its position.
    """
    elastic = meta.get("elastic")
    if isinstance(elastic, Mapping) and "processed" in elastic:
        return int(elastic["processed"])
    position = meta.get("position") or {}
    world = int(meta.get("world_size") or 1)
    return min(n, int(position.get("step_in_epoch", 0)) * batch_size * max(1, passes) * world)
