"""Built-in data sets as plain numpy arrays, shared by the PyTorch and Keras adapters.

Every rank builds the same arrays (same seed), then takes its own shard, so nothing is sent over
the network and the split never differs between ranks. Custom data (``module:function``) returns
an :class:`ArrayData` or a ``(x_train, y_train, x_val, y_val)`` tuple, or a framework's own data
sets: ``(train, val)`` torch Datasets (:mod:`.torch_data`) or ``tf.data`` Datasets (:mod:`.tf_data`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import numpy as np

from hvdrun_cli.errors import Problem, UserInputError
from hvdrun_cli.spec.components import option_names
from hvdrun_cli.spec.model import JobSpec

from . import plugins
from .base import train_of


@dataclass(frozen=True)
class ArrayData:
    """Features (float32) and integer class labels for training and validation."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    num_classes: int

    @property
    def input_shape(self) -> Tuple[int, ...]:
        return tuple(int(d) for d in self.x_train.shape[1:])


def image_shape(input_shape: Tuple[int, ...]) -> Tuple[int, int, int]:
    """(C, H, W) for the conv nets: keep 3-D inputs, make flat square inputs one-channel images.

    Digits arrive as 64 features, i.e. one 8x8 image. Both frameworks use this channels-first
    convention so one data set serves both.
    """
    if len(input_shape) == 3:
        return (int(input_shape[0]), int(input_shape[1]), int(input_shape[2]))
    if len(input_shape) == 2:
        return (1, int(input_shape[0]), int(input_shape[1]))
    total = int(np.prod(input_shape))
    side = int(round(total ** 0.5))
    if side * side != total:
        raise UserInputError(Problem("model 'cnn' needs image-shaped inputs or a square number of features",
                                     key="train.model", got=list(input_shape)))
    return (1, side, side)


def _standardize(train: np.ndarray, *others: np.ndarray) -> Tuple[np.ndarray, ...]:
    """Scale with the training set's statistics only (constant features keep scale 1)."""
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std[std == 0] = 1.0
    return tuple(((a - mean) / std).astype(np.float32) for a in (train, *others))


def digits(seed: int, val_fraction: float = 0.2) -> ArrayData:
    """scikit-learn's 8x8 handwritten digits (1797 images, bundled, no download), split by seed."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.data.astype(np.float64)
    y = bunch.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = int(round(len(x) * float(val_fraction)))
    val, train = order[:n_val], order[n_val:]
    x_train, x_val = _standardize(x[train], x[val])
    return ArrayData(x_train, y[train], x_val, y[val], num_classes=10)


def synthetic(seed: int, samples: int = 8192, val_samples: int = 1024, features: Any = 784,
              classes: int = 10) -> ArrayData:
    """Random inputs with labels from a fixed random linear map: learnable, any size, for benchmarks.

    ``features`` is an int or a shape list (e.g. ``[3, 32, 32]``).
    """
    shape = (int(features),) if isinstance(features, (int, float)) else tuple(int(d) for d in features)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((int(samples) + int(val_samples), *shape), dtype=np.float32)
    weights = rng.standard_normal((int(np.prod(shape)), int(classes)), dtype=np.float32)
    y = np.argmax(x.reshape(len(x), -1) @ weights, axis=1).astype(np.int64)
    n = int(samples)
    return ArrayData(x[:n], y[:n], x[n:], y[n:], num_classes=int(classes))


BUILTIN: Dict[str, Callable[..., ArrayData]] = {"digits": digits, "synthetic": synthetic}
_BUILTIN_ARGS = {name: option_names("data", name) for name in BUILTIN}  # the table validate checks too


def as_array_data(value: Any) -> Optional[ArrayData]:
    """Arrays in the shapes a custom data function may reasonably return them, else None."""
    if isinstance(value, ArrayData):
        return value
    if isinstance(value, Mapping) and all(k in value for k in ARRAY_KEYS):
        value = tuple(value[k] for k in ARRAY_KEYS)
    if isinstance(value, (tuple, list)) and len(value) == 4:
        x_train, y_train, x_val, y_val = (np.asarray(v) for v in value)
        classes = int(max(y_train.max(), y_val.max() if len(y_val) else 0)) + 1
        return ArrayData(x_train.astype(np.float32), y_train.astype(np.int64), x_val.astype(np.float32),
                         y_val.astype(np.int64), classes)
    return None


ARRAY_KEYS = ("x_train", "y_train", "x_val", "y_val")


def describe(value: Any) -> str:
    """What a data function returned, for the error message: ``tuple(list, list)``, ``Tensor``."""
    if isinstance(value, (tuple, list)):
        return f"{type(value).__name__}({', '.join(type(v).__name__ for v in value)})"
    return type(value).__name__


def wrong_data(value: Any, accepted: str) -> UserInputError:
    """Exit 2 naming ``train.data`` and what the function returned."""
    return UserInputError(Problem(f"data function must return {accepted}", key="train.data", got=describe(value)))


def load_data(spec: JobSpec) -> Any:
    """The spec's data on this rank (identical on every rank): ArrayData for arrays, else what the
    user's function returned (each framework's pipeline module accepts its own kinds of data set)."""
    train = train_of(spec)
    args = dict(train.data_args)
    if plugins.is_reference(train.data):
        fn = plugins.resolve(train.data, "train.data", spec)
        value = plugins.call_checked(fn, (), args, "train.data_args", train.data)
        return as_array_data(value) or value
    if train.data not in BUILTIN:
        raise plugins.unknown_builtin("train.data", train.data, tuple(BUILTIN))
    unknown = sorted(set(args) - set(_BUILTIN_ARGS[train.data]))
    if unknown:
        raise UserInputError([Problem(f"not an option of data {train.data!r} (valid: "
                                      f"{', '.join(_BUILTIN_ARGS[train.data])})", key=f"train.data_args.{k}")
                              for k in unknown])
    return BUILTIN[train.data](seed=train.seed, **args)
