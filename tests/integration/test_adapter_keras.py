"""Managed TensorFlow/Keras training (tf_keras ``fit``) on two real Horovod ranks (Gloo)."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from hvdrun_cli.adapters.checkpoint import CheckpointStore

pytestmark = pytest.mark.integration
EXIT_STOPPED = 75


@pytest.fixture(scope="module")
def reference(hvd_gloo_module_run, tmp_path_factory, example_job_spec):
    """jobs/digits-keras.yaml as shipped, shortened to 3 epochs (69 steps), run once for the module."""
    work = tmp_path_factory.mktemp("keras-reference")
    spec = example_job_spec("digits-keras", work, train={"epochs": 3})
    return hvd_gloo_module_run.run(spec, work / "run")


def test_example_job_learns_digits_with_identical_weights_on_both_ranks(reference):
    run = reference
    assert run.returncode == 0, run.output[-3000:]
    summary = run.summary()
    assert summary["val_accuracy"] >= 0.90
    assert (summary["framework"], summary["world_size"], summary["steps"], summary["status"]) == (
        "tensorflow", 2, 69, "completed")
    np.testing.assert_array_equal(run.params(0), run.params(1))
    train = [m for m in run.metrics() if m["kind"] == "train"]
    assert [m["step"] for m in train] == [20, 40, 60]
    assert train[-1]["loss"] < train[0]["loss"]
    # Horovod's warmup over the first epoch (23 steps): from lr (0.05) to the linearly scaled 2 x lr.
    assert train[0]["lr"] == pytest.approx(0.05 * (1 + 20 / 23), rel=1e-5)
    assert train[1]["lr"] == pytest.approx(0.1, rel=1e-6)
    assert "is slow compared to the batch time" not in run.output


def test_resume_ends_like_an_uninterrupted_run(reference, hvd_gloo_run, tmp_path, example_job_spec):
    checkpoints = {"interval_steps": 10, "keep": 2}
    first = hvd_gloo_run.run(example_job_spec("digits-keras", tmp_path, train={"epochs": 3, "max_steps": 17},
                                              checkpoint=checkpoints), tmp_path / "first")
    assert first.returncode == 0, first.output[-3000:]
    ckpt_dir = tmp_path / "checkpoints"
    assert sorted(p.name for p in ckpt_dir.glob("ckpt-*")) == [
        "ckpt-000000010.json", "ckpt-000000010.npz", "ckpt-000000017.json", "ckpt-000000017.npz"]
    sidecar = json.loads((ckpt_dir / "ckpt-000000017.json").read_text())
    assert sidecar["position"] == {"epoch": 0, "step_in_epoch": 17, "global_step": 17}
    store = CheckpointStore(str(ckpt_dir), keep=0, suffix=".npz")
    payload = store.read(str(ckpt_dir / "ckpt-000000017.json")).payload
    with np.load(payload, allow_pickle=False) as arrays:  # plain arrays, no pickled objects
        weights = [arrays[k] for k in sorted(arrays.files) if k.startswith("model/")]
    np.testing.assert_array_equal(np.concatenate([w.ravel() for w in weights]).astype(np.float64), first.params(0))

    second = hvd_gloo_run.run(example_job_spec("digits-keras", tmp_path, train={"epochs": 3},
                                               checkpoint=checkpoints), tmp_path / "second", attempt=1)
    assert second.returncode == 0, second.output[-3000:]
    assert (second.summary()["resumed_from_step"], second.summary()["steps"]) == (17, 69)
    np.testing.assert_array_equal(second.params(0), second.params(1))
    np.testing.assert_allclose(second.params(0), reference.params(0), rtol=1e-5, atol=1e-6)


def test_fp16_compression_and_two_backward_passes(hvd_gloo_run, tmp_path, example_job_spec):
    spec = example_job_spec("digits-keras", tmp_path, train={"epochs": 3},
                            horovod={"compression": "fp16", "backward_passes_per_step": 2})
    run = hvd_gloo_run.run(spec, tmp_path / "run")
    assert run.returncode == 0, run.output[-3000:]
    assert run.summary()["steps"] == 69
    assert run.summary()["val_accuracy"] >= 0.85
    np.testing.assert_array_equal(run.params(0), run.params(1))


def test_the_stop_signal_stops_all_ranks_with_exit_75_and_a_valid_checkpoint(
        hvd_gloo_run, tmp_path, wait_for_metrics, example_job_spec, find_rank_pids):
    spec = example_job_spec("digits-keras", tmp_path, train={"epochs": 300}, checkpoint={"interval_steps": 100000})
    proc = hvd_gloo_run.start(spec, tmp_path / "run")
    wait_for_metrics(tmp_path / "run", proc, count=2)
    pids = find_rank_pids(tmp_path / "run")
    assert sorted(pids) == [0, 1]
    os.kill(pids[0], signal.SIGUSR2)  # slurm.signal's default
    run = hvd_gloo_run.wait(proc, tmp_path / "run", timeout=120)
    assert run.rank_exit_code() == EXIT_STOPPED, run.output[-3000:]
    summary = run.summary()
    assert summary["status"] == "stopped" and 0 < summary["steps"] < 300 * 23
    assert "stop requested (SIGUSR2)" in run.output
    store = CheckpointStore(str(tmp_path / "checkpoints"), keep=0, suffix=".npz")
    newest = store.read(store.sidecar_path(summary["checkpoint"]))
    assert newest.step == summary["steps"] and Path(newest.payload).is_file()
    np.testing.assert_array_equal(run.params(0), run.params(1))
