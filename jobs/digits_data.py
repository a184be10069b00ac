"""Digits as a framework's own data sets, for jobs/digits-torch-dataset.yaml and jobs/digits-tfdata.yaml.

What a user's data module looks like: a function returning ``(train, val)`` data sets. hvdjob shards,
shuffles and batches them; the model's input shape and class count come from the data. Each function
imports only its own framework, so a PyTorch job never loads TensorFlow.
"""
from typing import Tuple

import numpy as np


def _digits(val_fraction: float, seed: int = 0) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits (no download), split by seed and standardized."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = int(round(len(x) * val_fraction))
    val, train = order[:n_val], order[n_val:]
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    std[std == 0] = 1.0
    scale = lambda a: ((a - mean) / std).astype(np.float32)  # noqa: E731
    return scale(x[train]), y[train].astype(np.int64), scale(x[val]), y[val].astype(np.int64)


def torch_datasets(val_fraction: float = 0.2):
    """Map-style ``torch.utils.data.Dataset``s of (features, label), with ``classes`` like torchvision's."""
    import torch
    from torch.utils.data import Dataset

    class Digits(Dataset):
        classes = [str(d) for d in range(10)]

        def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
            self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)

        def __len__(self) -> int:
            return len(self.x)

        def __getitem__(self, index: int):
            return self.x[index], int(self.y[index])

    x_train, y_train, x_val, y_val = _digits(val_fraction)
    return Digits(x_train, y_train), Digits(x_val, y_val)


def tf_datasets(val_fraction: float = 0.2):
    """Unbatched ``tf.data.Dataset``s of (features, label)."""
    import tensorflow as tf

    x_train, y_train, x_val, y_val = _digits(val_fraction)
    return (tf.data.Dataset.from_tensor_slices((x_train, y_train)),
            tf.data.Dataset.from_tensor_slices((x_val, y_val)))
