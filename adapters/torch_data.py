"""PyTorch input pipelines: arrays, the user's map-style ``Dataset``, or the user's ``IterableDataset``.

``train.data`` may return arrays (see :mod:`.data`) or ``(train, val)`` torch data sets:

* map-style ``Dataset`` (``__getitem__`` + ``__len__``): hvdjob shards it with ``DistributedSampler``
  (seeded, ``set_epoch`` every epoch, padded so every rank gets as many samples) and reads it
  through a ``DataLoader`` configured by ``train.loader``. A resume in the middle of an epoch starts
  the sampler at the next unfinished batch, so finished batches are never read again;
* ``IterableDataset``: the user's code shards it (e.g. by ``hvd.rank()`` or the loader's worker
  info); hvdjob batches it through the same ``DataLoader`` options. Ranks may then get different
  numbers of batches, which the engine handles with Horovod's ``join``. An iterable cannot seek: a
  resume in the middle of an epoch reads and discards the batches this rank had finished (its
  count is in the checkpoint), then trains on from there.

In-memory arrays take a faster path with the same sampler order: batches are cut from tensors by
index, with no per-sample ``__getitem__`` or collation.
"""
from __future__ import annotations

import itertools
from typing import Any, Iterable, Iterator, List, Optional, Sequence, Tuple

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, IterableDataset, Sampler

from hvdrun_cli.errors import Problem, UserInputError
from hvdrun_cli.spec.model import JobSpec, LoaderSpec

from .backend import DataFacts, EpochPlan
from .base import RankContext, train_of
from .data import ArrayData, describe, load_data, wrong_data

Batch = Tuple[torch.Tensor, torch.Tensor]
ACCEPTED = ("arrays (x_train, y_train, x_val, y_val), ArrayData, or (train, val) torch.utils.data Datasets "
            "(map-style or IterableDataset) of (features, label) samples")


class ListSampler(Sampler[int]):
    """Yields the indices it is given; the pipeline sets them before each epoch (persistent workers stay)."""

    def __init__(self, indices: Sequence[int] = ()) -> None:
        self.indices: Sequence[int] = indices

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class Pipeline:
    """One rank's view of the training and validation data."""

    facts: DataFacts
    input_shape: Tuple[int, ...]

    def num_classes(self) -> int:
        raise NotImplementedError

    def epoch_batches(self, plan: EpochPlan) -> Iterable[Batch]:
        raise NotImplementedError

    def local_batches(self, plan: EpochPlan) -> Optional[int]:
        raise NotImplementedError

    def val_batches(self) -> Iterable[Batch]:
        raise NotImplementedError

    def update_world(self, ctx: RankContext) -> None:
        pass


class _Sharded(Pipeline):
    """Map-style data: the epoch order of ``DistributedSampler``, or elastic mode's explicit indices."""

    def __init__(self, n_train: int, n_val: int, ctx: RankContext, batch_size: int, seed: int) -> None:
        self.n_train, self.n_val, self.batch_size, self.seed = n_train, n_val, batch_size, seed
        self.update_world(ctx)

    def update_world(self, ctx: RankContext) -> None:
        self.ctx = ctx
        # Pads the last shard by repeating samples, so every rank runs the same number of steps.
        self.sampler = DistributedSampler(range(self.n_train), num_replicas=ctx.size, rank=ctx.rank, shuffle=True,
                                          seed=self.seed, drop_last=False)

    def epoch_indices(self, plan: EpochPlan) -> List[int]:
        if plan.indices is not None:
            return [int(i) for i in plan.indices]
        self.sampler.set_epoch(plan.epoch)
        return list(self.sampler)[plan.skip_batches * self.batch_size:]  # indices only: nothing is read

    def local_batches(self, plan: EpochPlan) -> Optional[int]:
        if plan.indices is not None:
            return -(-len(plan.indices) // self.batch_size)
        return max(0, -(-len(self.sampler) // self.batch_size) - plan.skip_batches)

    def val_indices(self) -> range:
        """This rank's own slice of the validation set (no padding, so every sample counts once)."""
        return range(self.ctx.rank, self.n_val, self.ctx.size)


class ArrayPipeline(_Sharded):
    def __init__(self, data: ArrayData, ctx: RankContext, batch_size: int, seed: int) -> None:
        self.data = data
        self.x_train, self.y_train = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
        self.x_val, self.y_val = torch.from_numpy(data.x_val), torch.from_numpy(data.y_val)
        super().__init__(len(data.x_train), len(data.x_val), ctx, batch_size, seed)
        self.facts = DataFacts(len(data.x_train), True, "arrays", equal_shards=True)
        self.input_shape = data.input_shape

    def num_classes(self) -> int:
        return self.data.num_classes

    def epoch_batches(self, plan: EpochPlan) -> Iterable[Batch]:
        x, y = self.x_train, self.y_train
        for idx in torch.split(torch.tensor(self.epoch_indices(plan), dtype=torch.long), self.batch_size):
            yield x[idx], y[idx]

    def val_batches(self) -> Iterable[Batch]:
        idx_all = torch.tensor(list(self.val_indices()), dtype=torch.long)
        for idx in torch.split(idx_all, 4 * self.batch_size):
            yield self.x_val[idx], self.y_val[idx]


def loader_options(loader: LoaderSpec) -> dict:
    """``train.loader`` as DataLoader keyword arguments; combinations PyTorch rejects are input errors."""
    if loader.num_workers == 0 and (loader.prefetch_factor is not None or loader.persistent_workers):
        key = "train.loader.prefetch_factor" if loader.prefetch_factor is not None else "train.loader.persistent_workers"
        raise UserInputError(Problem("needs train.loader.num_workers > 0 (with 0 the training process reads the "
                                     "data itself)", key=key))
    options: dict = {"num_workers": loader.num_workers, "pin_memory": loader.pin_memory,
                     "persistent_workers": loader.persistent_workers}
    if loader.prefetch_factor is not None:
        options["prefetch_factor"] = loader.prefetch_factor
    return options


def first_sample(dataset: Any, which: str) -> Tuple[Any, Any]:
    """The (features, label) of the first sample; anything else is the user's input error."""
    try:
        sample = dataset[0] if not isinstance(dataset, IterableDataset) else next(iter(dataset))
    except StopIteration:
        raise UserInputError(Problem(f"the {which} data set is empty", key="train.data")) from None
    if not isinstance(sample, (tuple, list)) or len(sample) != 2:
        raise UserInputError(Problem(f"samples of the {which} data set must be (features, label) pairs",
                                     key="train.data", got=describe(sample)))
    return sample[0], sample[1]


def shape_of(features: Any) -> Tuple[int, ...]:
    return tuple(int(d) for d in torch.as_tensor(features).shape)


def classes_of(dataset: Any) -> int:
    """Classes from a ``classes`` attribute (torchvision's data sets have one), ``targets``, or one scan."""
    classes = getattr(dataset, "classes", None)
    if classes is not None:
        return len(classes)
    targets = getattr(dataset, "targets", None)
    if targets is not None:
        return int(torch.as_tensor(targets).max()) + 1
    highest = -1
    items: Iterable[Any] = dataset if isinstance(dataset, IterableDataset) else (dataset[i] for i in range(len(dataset)))
    for _, label in items:
        highest = max(highest, int(label))
    return highest + 1


class DatasetPipeline(_Sharded):
    """A map-style ``Dataset`` read through ``DataLoader``, sharded and shuffled by ``DistributedSampler``."""

    def __init__(self, train: Dataset, val: Optional[Dataset], ctx: RankContext, batch_size: int, seed: int,
                 loader: LoaderSpec) -> None:
        self.train, self.val = train, val
        n_val = len(val) if val is not None and not isinstance(val, IterableDataset) else 0
        super().__init__(len(train), n_val, ctx, batch_size, seed)
        self.facts = DataFacts(len(train), True, "map-style Dataset", equal_shards=True)
        self.input_shape = shape_of(first_sample(train, "training")[0])
        options = loader_options(loader)
        self.generator = torch.Generator()
        self.train_sampler = ListSampler()
        self.loader = DataLoader(train, batch_size=batch_size, sampler=self.train_sampler, drop_last=False,
                                 generator=self.generator, **options)
        self.val_loader = _val_loader(val, self.val_indices(), batch_size, options)

    def num_classes(self) -> int:
        return classes_of(self.train)

    def epoch_batches(self, plan: EpochPlan) -> Iterable[Batch]:
        self.train_sampler.indices = self.epoch_indices(plan)
        self.generator.manual_seed(self.seed * 1000003 + plan.epoch)  # worker seeds: a function of the epoch
        return self.loader

    def val_batches(self) -> Iterable[Batch]:
        return self.val_loader if self.val_loader is not None else ()

    def update_world(self, ctx: RankContext) -> None:
        super().update_world(ctx)
        if getattr(self, "val_loader", None) is not None:
            self.val_loader.sampler.indices = self.val_indices()  # type: ignore[union-attr]


def _val_loader(val: Any, indices: Sequence[int], batch_size: int, options: dict) -> Optional[DataLoader]:
    if val is None:
        return None
    if isinstance(val, IterableDataset):  # sharded by the user's code, like the training data
        return DataLoader(val, batch_size=batch_size, **options)
    return DataLoader(val, batch_size=batch_size, sampler=ListSampler(indices), **options)


class IterablePipeline(Pipeline):
    """An ``IterableDataset`` the user shards; batch counts may differ between ranks."""

    def __init__(self, train: IterableDataset, val: Optional[Any], ctx: RankContext, batch_size: int,
                 loader: LoaderSpec) -> None:
        self.train, self.ctx = train, ctx
        self.facts = DataFacts(None, False, "IterableDataset")
        self.input_shape = shape_of(first_sample(train, "training")[0])
        options = loader_options(loader)
        self.loader = DataLoader(train, batch_size=batch_size, **options)
        n_val = len(val) if val is not None and not isinstance(val, IterableDataset) else 0
        self.val_loader = _val_loader(val, range(ctx.rank, n_val, ctx.size), batch_size, options)

    def num_classes(self) -> int:
        return classes_of(self.train)

    def epoch_batches(self, plan: EpochPlan) -> Iterable[Batch]:
        set_epoch = getattr(self.train, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(plan.epoch)
        # No random access: skipping this rank's finished batches means reading them.
        return itertools.islice(self.loader, plan.skip_batches, None)

    def local_batches(self, plan: EpochPlan) -> Optional[int]:
        try:
            return max(0, len(self.loader) - plan.skip_batches)
        except TypeError:
            return None  # no __len__: only the data knows when it ends

    def val_batches(self) -> Iterable[Batch]:
        return self.val_loader if self.val_loader is not None else ()


def pipeline_for(spec: JobSpec, ctx: RankContext) -> Pipeline:
    """Load ``train.data`` and wrap it in the pipeline for what it returned."""
    train = train_of(spec)
    value = load_data(spec)
    if isinstance(value, ArrayData):
        return ArrayPipeline(value, ctx, train.batch_size, train.seed)
    if isinstance(value, Dataset) and not isinstance(value, (tuple, list)):
        value = (value, None)
    if isinstance(value, (tuple, list)) and len(value) == 2 and isinstance(value[0], Dataset) and (
            value[1] is None or isinstance(value[1], Dataset)):
        train_set, val_set = value
        if isinstance(train_set, IterableDataset):
            return IterablePipeline(train_set, val_set, ctx, train.batch_size, train.loader)
        if not hasattr(train_set, "__len__"):
            raise UserInputError(Problem("a map-style Dataset needs __len__ (or make it an IterableDataset)",
                                         key="train.data", got=describe(train_set)))
        return DatasetPipeline(train_set, val_set, ctx, train.batch_size, train.seed, train.loader)
    raise wrong_data(value, ACCEPTED)
