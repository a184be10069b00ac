"""Shortcuts for your own training scripts (script mode) that still use Horovod directly.

    from hvdrun_cli.adapters import torch_setup
    hvd, model, optimizer, sampler = torch_setup(model, optimizer, train_set)

They do the handful of things every Horovod script repeats (init, wrap the optimizer, broadcast
the starting state from rank 0, shard the data) and nothing else; the framework is imported only
when the function is called.
"""
from __future__ import annotations

from typing import Any, List, NamedTuple, Optional

from .schedule import scaled_lr

__all__ = ["torch_setup", "keras_setup", "scaled_lr", "TorchSetup", "KerasSetup"]


class TorchSetup(NamedTuple):
    hvd: Any  # the horovod.torch module
    model: Any
    optimizer: Any  # the hvd.DistributedOptimizer
    sampler: Optional[Any]  # DistributedSampler over ``dataset``, or None


class KerasSetup(NamedTuple):
    hvd: Any  # the horovod.tensorflow.keras module
    optimizer: Any  # the hvd.DistributedOptimizer, pass it to model.compile
    callbacks: List[Any]  # pass to model.fit(callbacks=...)


def torch_setup(model: Any, optimizer: Any, dataset: Any = None, *, shuffle: bool = True, seed: int = 0,
                compression: str = "none", op: str = "average", backward_passes_per_step: int = 1,
                gradient_predivide_factor: float = 1.0, root_rank: int = 0) -> TorchSetup:
    """Initialise Horovod and make ``model``/``optimizer`` data-parallel.

    Wraps ``optimizer`` in ``hvd.DistributedOptimizer`` (gradients all-reduced by parameter name),
    broadcasts rank ``root_rank``'s parameters (and its optimizer state, if it has any, e.g. after
    loading a checkpoint) so every rank starts identical, and returns a ``DistributedSampler`` for
    ``dataset``: call ``sampler.set_epoch(epoch)`` each epoch for a fresh, rank-consistent shuffle.
    ``compression`` is "none" or "fp16"; ``op`` is "average", "sum" or "adasum".
    """
    import horovod.torch as hvd
    import torch
    from torch.utils.data import DistributedSampler

    if not hvd.is_initialized():
        hvd.init()
    if torch.cuda.is_available():
        torch.cuda.set_device(hvd.local_rank())
    ops = {"average": hvd.Average, "sum": hvd.Sum, "adasum": hvd.Adasum}
    compressions = {"none": hvd.Compression.none, "fp16": hvd.Compression.fp16}
    distributed = hvd.DistributedOptimizer(
        optimizer, named_parameters=model.named_parameters(), compression=compressions[compression],
        op=ops[op], backward_passes_per_step=backward_passes_per_step,
        gradient_predivide_factor=gradient_predivide_factor)
    # Horovod fills empty optimizer state with a zero-gradient step, which moves weights when weight
    # decay is on; broadcast optimizer state only when the root has some, and before the weights.
    if hvd.broadcast_object(bool(distributed.state_dict()["state"]), root_rank=root_rank):
        hvd.broadcast_optimizer_state(distributed, root_rank=root_rank)
    hvd.broadcast_parameters(model.state_dict(), root_rank=root_rank)
    sampler = None
    if dataset is not None:
        sampler = DistributedSampler(dataset, num_replicas=hvd.size(), rank=hvd.rank(), shuffle=shuffle, seed=seed)
    return TorchSetup(hvd, model, distributed, sampler)


def keras_setup(optimizer: Any, *, compression: str = "none", backward_passes_per_step: int = 1,
                warmup_epochs: float = 0.0, steps_per_epoch: Optional[int] = None,
                root_rank: int = 0) -> KerasSetup:
    """Initialise Horovod for a tf.keras script and wrap ``optimizer``.

    Returns the callbacks every Horovod Keras job needs: broadcast of the initial variables from
    rank ``root_rank`` and averaging of epoch metrics over ranks, plus learning-rate warmup over
    ``warmup_epochs`` (from ``lr / size`` up to the optimizer's rate) when it is positive.
    Build the optimizer with the already scaled rate, e.g. ``scaled_lr(0.01, "linear", hvd.size())``.
    """
    from .keras_compat import install_keras_alias

    install_keras_alias()
    import horovod.tensorflow.keras as hvd
    import tensorflow as tf

    if not hvd.is_initialized():
        hvd.init()
    compressions = {"none": hvd.Compression.none, "fp16": hvd.Compression.fp16}
    distributed = hvd.DistributedOptimizer(optimizer, compression=compressions[compression],
                                           backward_passes_per_step=backward_passes_per_step,
                                           average_aggregated_gradients=True)
    callbacks: List[Any] = [hvd.callbacks.BroadcastGlobalVariablesCallback(root_rank),
                            hvd.callbacks.MetricAverageCallback()]
    if warmup_epochs > 0:
        lr = float(tf.keras.backend.get_value(optimizer.learning_rate))
        callbacks.append(hvd.callbacks.LearningRateWarmupCallback(
            initial_lr=lr, warmup_epochs=warmup_epochs, momentum_correction=False,
            steps_per_epoch=steps_per_epoch, verbose=0))
    return KerasSetup(hvd, distributed, callbacks)
