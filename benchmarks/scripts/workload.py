"""The training workload shared by the hand-written loops, read from a JSON file the suite writes.

The suite resolves jobs/bench-synthetic.yaml once and hands its numbers (model size, data, batch
size, lr, momentum, seed, steps) to every variant, so the managed run and the hand-written loops train the
same model on the same data; the model and data builders are the very functions hvdjob uses.
"""
import json
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from hvdrun_cli.adapters.data import ArrayData, synthetic
from hvdrun_cli.adapters.rankenv import process_start_unix_time


@dataclass(frozen=True)
class Workload:
    hidden: Tuple[int, ...]
    data_args: Dict[str, Any]
    batch_size: int
    lr: float
    seed: int
    steps: int
    momentum: float = 0.0  # the managed job's SGD momentum, used by every hand-written loop
    steady_from_step: int = 0  # Keras loops: also time steps after this many (past tracing); 0: not at all

    @staticmethod
    def load(path: str) -> "Workload":
        with open(path, encoding="utf-8") as fh:
            raw = json.load(fh)
        return Workload(tuple(raw["hidden"]), dict(raw["data_args"]), int(raw["batch_size"]), float(raw["lr"]),
                        int(raw["seed"]), int(raw["steps"]), float(raw.get("momentum", 0.0)),
                        int(raw.get("steady_from_step", 0)))

    def data(self) -> ArrayData:
        return synthetic(seed=self.seed, **self.data_args)

    def model(self, data: ArrayData):
        from hvdrun_cli.adapters.torch_build import mlp

        return mlp(data.input_shape, data.num_classes, hidden=self.hidden)


def epoch_batches(sampler, epoch: int, batch_size: int) -> List:
    """This rank's index batches for one epoch (the sampler shards and shuffles by seed and epoch)."""
    import torch

    sampler.set_epoch(epoch)
    return list(torch.split(torch.tensor(list(sampler), dtype=torch.long), batch_size))


def write_summary(path: str, samples: int, first_step: float, end: float, world_size: int,
                  extra: Optional[Dict[str, Any]] = None) -> None:
    """The fields ``hvdjob bench`` reads from a managed run's summary.json."""
    summary = {
        "samples": samples,
        "samples_per_sec": samples / max(end - first_step, 1e-9),
        "first_step_unix_time": first_step,
        "process_start_unix_time": process_start_unix_time(),
        "train_time_s": end - first_step,
        "world_size": world_size,
        "written_unix_time": time.time(),
        **(extra or {}),
    }
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=2)
