"""Rank side of the Gloo network test, for machines without MPI: one rank per host, via horovodrun.

Horovod exposes collectives only, no point-to-point messages, so this measures what a training
step does: an allreduce of ``--mib`` MiB (best of a few rounds, after a warm-up), checked for the
right sum on every rank. Uses Horovod's PyTorch binding, else its TensorFlow one. Rank 0 prints one
JSON line. Never imported by hvdjob.
"""
from __future__ import annotations

import argparse
import json
import socket
import time
from typing import Callable, List, Tuple

MIB = 1024 * 1024
ROUNDS = 3


def _torch_allreduce(count: int) -> Tuple[object, Callable[[float], float], Callable[[], List[str]]]:
    import horovod.torch as hvd
    import torch

    hvd.init()

    def reduce(value: float) -> float:
        out = hvd.allreduce(torch.full((count,), value, dtype=torch.float32), op=hvd.Sum)
        return float(out[0]) if float(out[0]) == float(out[-1]) else float("nan")

    return hvd, reduce, lambda: hvd.allgather_object(socket.gethostname())


def _tensorflow_allreduce(count: int) -> Tuple[object, Callable[[float], float], Callable[[], List[str]]]:
    import horovod.tensorflow as hvd
    import tensorflow as tf

    hvd.init()

    def reduce(value: float) -> float:
        out = hvd.allreduce(tf.fill([count], value), op=hvd.Sum).numpy()
        return float(out[0]) if float(out[0]) == float(out[-1]) else float("nan")

    return hvd, reduce, lambda: hvd.allgather_object(socket.gethostname())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=float, default=16.0)
    args = parser.parse_args()
    count = max(1, int(args.mib * MIB) // 4)
    try:
        hvd, reduce, hostnames = _torch_allreduce(count)
    except ImportError:
        hvd, reduce, hostnames = _tensorflow_allreduce(count)
    rank, size = hvd.rank(), hvd.size()  # type: ignore[attr-defined]
    names = hostnames()
    reduce(1.0)  # warm-up: Gloo connects pairs on first use
    expected = size * (size + 1) / 2
    best, ok = float("inf"), True
    for _ in range(ROUNDS):
        started = time.perf_counter()
        total = reduce(float(rank + 1))
        best = min(best, time.perf_counter() - started)
        ok = ok and total == expected
    if rank == 0:
        print(json.dumps({"hostnames": names, "mib": args.mib, "allreduce": {"ok": ok, "seconds": best}, "links": []}),
              flush=True)


if __name__ == "__main__":
    main()
