"""Managed training over a user's own data pipelines, through the real ``hvdjob`` CLI on two Gloo ranks.

The data modules here are written the way a user would write them (their own Dataset class, their
own tf.data pipeline with a map), not taken from ``jobs/``; uneven data (ranks with different numbers
of batches) must finish without a hang and report each rank's share.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict

import numpy as np
import pytest

from tests.hvdjob_process import REPO, Finished, run_hvdjob, write_job

pytestmark = pytest.mark.integration

USER_TORCH = '''
import numpy as np
import torch
from sklearn.datasets import load_digits
from torch.utils.data import Dataset


class DigitImages(Dataset):
    """8x8 digit images as 1x8x8 tensors, scaled to [0, 1]."""

    def __init__(self, train: bool, holdout: int = 300):
        images, labels = load_digits(return_X_y=True)
        rows = slice(holdout, None) if train else slice(0, holdout)
        self.images = torch.tensor(images[rows] / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
        self.labels = torch.tensor(labels[rows])

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i], self.labels[i]


def get_datasets(holdout=300):
    return DigitImages(True, holdout), DigitImages(False, holdout)
'''

USER_TF = '''
import tensorflow as tf
from sklearn.datasets import load_digits


def _normalize(image, label):
    return tf.cast(image, tf.float32) / 16.0, tf.cast(label, tf.int32)


def build(holdout=300):
    images, labels = load_digits(return_X_y=True)
    images = images.reshape(-1, 8, 8)
    train = tf.data.Dataset.from_tensor_slices((images[holdout:], labels[holdout:])).map(_normalize)
    val = tf.data.Dataset.from_tensor_slices((images[:holdout], labels[:holdout])).map(_normalize)
    return train, val
'''

UNEVEN = '''
import os
import numpy as np
import torch
from sklearn.datasets import load_digits
from torch.utils.data import IterableDataset, TensorDataset


class MyShard(IterableDataset):
    """Sharded by the user's code: rank 0 reads 900 samples, rank 1 only 500."""

    def __init__(self, x, y, sizes):
        self.x, self.y, self.sizes = x, y, sizes

    def __iter__(self):
        rank = int(os.environ["HOROVOD_RANK"])
        start = sum(self.sizes[:rank])
        for i in range(start, start + self.sizes[rank]):
            yield self.x[i], int(self.y[i])


def torch_data():
    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x / 16.0, dtype=torch.float32), torch.tensor(y)
    return MyShard(x[:1400], y[:1400], [900, 500]), TensorDataset(x[1400:], y[1400:])


def tf_data(samples=1001):
    import tensorflow as tf
    x, y = load_digits(return_X_y=True)
    train = tf.data.Dataset.from_tensor_slices(((x[:samples] / 16.0).astype("float32"), y[:samples]))
    val = tf.data.Dataset.from_tensor_slices(((x[1400:] / 16.0).astype("float32"), y[1400:]))
    return train, val


def not_data():
    return [1, 2, 3]
'''


def _spec(tmp_path: Path, framework: str, data: str, **extra: str) -> Path:
    lines = [f"framework: {framework}", f"name: {data.replace(':', '-').replace('_', '-')}", "launcher: gloo",
             "resources: {np: 2}", f"run_root: {tmp_path / 'runs'}", "train:", f"  data: {data}"]
    lines += [f"  {key}: {value}" for key, value in extra.items()]
    return write_job(tmp_path, f"{data.split(':')[1]}.yaml", "\n".join(lines) + "\n")


def _summary(finished: Finished) -> Dict[str, Any]:
    return json.loads((finished.run_dir() / "summary.json").read_text())


def _smoke(spec: Path, tmp_path: Path) -> Finished:
    return run_hvdjob("smoke", str(spec), "--steps", "12", "--work-dir", str(tmp_path / "smoke"), cwd=tmp_path,
                      timeout=600)


@pytest.mark.parametrize("framework, module, source, function", [
    ("torch", "user_torch_data", USER_TORCH, "get_datasets"),
    ("tensorflow", "user_tf_data", USER_TF, "build"),
])
def test_a_users_own_data_module_trains_to_90_percent_passes_smoke_and_says_when_done(
        tmp_path: Path, framework: str, module: str, source: str, function: str) -> None:
    (tmp_path / f"{module}.py").write_text(source)
    spec = _spec(tmp_path, framework, f"{module}:{function}", epochs="10", warmup_epochs="1")
    trained = run_hvdjob("run", str(spec), cwd=tmp_path, timeout=600)
    assert trained.returncode == 0, trained.output[-3000:]
    summary = _summary(trained)
    assert summary["val_accuracy"] >= 0.9 and summary["status"] == "completed"
    assert summary["data"] == ("map-style Dataset" if framework == "torch" else "tf.data")

    again = run_hvdjob("run", str(spec), cwd=tmp_path, timeout=600)
    assert again.returncode == 0, again.output[-3000:]
    assert "is already complete" in again.stdout and "nothing to train" in again.stdout
    assert "epoch 1/10" not in again.stdout  # no training loop started

    smoked = _smoke(spec, tmp_path)
    assert smoked.returncode == 0, smoked.output[-3000:]
    for check in ("loss-decreases", "same-parameters", "checkpoint-resume"):
        assert re.search(rf"^PASS +{check}:", smoked.stdout, re.M), smoked.stdout


@pytest.mark.parametrize("job", ["digits-torch-dataset", "digits-tfdata"])
def test_example_data_pipeline_jobs_pass_smoke(tmp_path: Path, job: str) -> None:
    smoked = _smoke(REPO / "jobs" / f"{job}.yaml", tmp_path)
    assert smoked.returncode == 0, smoked.output[-3000:]
    assert re.search(r"^PASS +checkpoint-resume:", smoked.stdout, re.M), smoked.stdout


@pytest.mark.parametrize("batch_size, log_interval", [
    (32, 5),  # rank 1's last step of epoch 2 (45) ends a metric window: its allreduce is in flight at the join
    (50, 3),  # rank 1's last step of epoch 1 (10) is a stop check: likewise
])
def test_uneven_iterable_ranks_join_and_report_their_batch_counts(tmp_path: Path, batch_size: int,
                                                                  log_interval: int) -> None:
    (tmp_path / "uneven_data.py").write_text(UNEVEN)
    spec = _spec(tmp_path, "torch", "uneven_data:torch_data", epochs="3", log_interval=str(log_interval),
                 batch_size=str(batch_size), model_args="{num_classes: 10}")
    finished = run_hvdjob("run", str(spec), "--set", "checkpoint.interval_steps=12", cwd=tmp_path, timeout=120,
                          env={"HVDJOB_PARAM_DUMP": str(tmp_path / "params")})
    assert finished.returncode == 0, finished.output[-3000:]
    summary = _summary(finished)
    # Rank 0 reads 900 samples an epoch, rank 1 500; three epochs each.
    longest, shortest = 3 * -(-900 // batch_size), 3 * -(-500 // batch_size)
    assert summary["batches_per_rank"] == [longest, shortest] and summary["steps"] == longest
    assert summary["batch_imbalance"] == pytest.approx(longest / shortest - 1, abs=1e-6)
    assert summary["samples"] == 3 * 1400 and summary["status"] == "completed"
    assert (f"batches per rank: rank 0: {longest}, rank 1: {shortest} "
            f"(imbalance {100 * (longest / shortest - 1):.1f}%") in finished.stdout
    np.testing.assert_array_equal(np.load(tmp_path / "params" / "rank0.npy"), np.load(tmp_path / "params" / "rank1.npy"))


def test_uneven_tf_data_shards_join_and_report_their_batch_counts(tmp_path: Path) -> None:
    (tmp_path / "uneven_data.py").write_text(UNEVEN)
    spec = _spec(tmp_path, "tensorflow", "uneven_data:tf_data", epochs="2", batch_size="100",
                 data_args="{samples: 1001}")
    finished = run_hvdjob("run", str(spec), cwd=tmp_path, timeout=400)
    assert finished.returncode == 0, finished.output[-3000:]
    summary = _summary(finished)
    assert summary["batches_per_rank"] == [12, 10] and summary["steps"] == 12  # 501 and 500 samples a rank
    assert summary["samples"] == 2 * 1001 and summary["uneven_epochs"] == 2


def test_a_data_function_returning_something_else_is_a_clean_input_error(tmp_path: Path) -> None:
    (tmp_path / "uneven_data.py").write_text(UNEVEN)
    spec = _spec(tmp_path, "torch", "uneven_data:not_data")
    finished = run_hvdjob("run", str(spec), cwd=tmp_path, timeout=300)
    assert finished.returncode == 2, finished.output[-3000:]
    assert "error: train.data: data function must return arrays (x_train, y_train, x_val, y_val)" in finished.output
    assert "(got 'list(int, int, int)')" in finished.output and "Traceback" not in finished.output
