"""Managed PyTorch training on two real Horovod ranks (Gloo): accuracy, weight agreement,
Horovod options, checkpoint/resume and graceful stop."""
from __future__ import annotations

import json
import os
import re
import signal
import textwrap
from pathlib import Path

import numpy as np
import pytest

from hvdrun_cli.adapters.checkpoint import CheckpointStore

pytestmark = pytest.mark.integration
EXIT_STOPPED = 75


def _load_checkpoint(payload: Path) -> dict:
    """Verify a checkpoint the way a resume does: sidecar hash, then a weights-only load."""
    import torch

    store = CheckpointStore(str(payload.parent), keep=0, suffix=".pt")
    checkpoint = store.read(store.sidecar_path(str(payload)))
    return torch.load(checkpoint.payload, weights_only=True)


@pytest.fixture(scope="module")
def reference(hvd_gloo_module_run, tmp_path_factory, example_job_spec):
    """jobs/digits-torch.yaml exactly as shipped (10 epochs, 230 steps), run once for the module."""
    work = tmp_path_factory.mktemp("torch-reference")
    spec = example_job_spec("digits-torch", work)
    return hvd_gloo_module_run.run(spec, work / "run")


def test_example_job_learns_digits_with_identical_weights_on_both_ranks(reference):
    run = reference
    assert run.returncode == 0, run.output[-3000:]
    summary = run.summary()
    assert summary["val_accuracy"] >= 0.90
    assert summary["status"] == "completed"
    assert (summary["framework"], summary["world_size"], summary["steps"], summary["epochs"]) == ("torch", 2, 230, 10)
    assert summary["resumed_from_step"] is None
    assert summary["process_start_unix_time"] < summary["first_step_unix_time"]
    assert summary["samples_per_sec"] > 0 and summary["wall_time_s"] > 0
    np.testing.assert_array_equal(run.params(0), run.params(1))

    train = [m for m in run.metrics() if m["kind"] == "train"]
    val = [m for m in run.metrics() if m["kind"] == "validation"]
    assert [m["step"] for m in train] == list(range(20, 230, 20))  # log_interval 20
    assert len(val) == 10 and val[-1]["val_accuracy"] == pytest.approx(summary["val_accuracy"], abs=1e-6)
    assert train[-1]["loss"] < train[0]["loss"] / 5
    # Warmup over the first epoch (23 steps) from lr to 2 x lr, the same rates as Horovod's Keras callback.
    assert train[0]["lr"] == pytest.approx(0.05 * (1 + 20 / 23), rel=1e-5)
    assert train[1]["lr"] == pytest.approx(0.1)
    assert "epoch 10/10 step 220/230 loss" in run.output  # rank 0's progress line

    # keep: 2 -> the interval checkpoint at 200 and the final one; each verifies and loads safely.
    checkpoints = sorted(p.name for p in (run.run_dir.parent / "checkpoints").glob("ckpt-*.pt"))
    assert checkpoints == ["ckpt-000000200.pt", "ckpt-000000230.pt"]
    state = _load_checkpoint(run.run_dir.parent / "checkpoints" / "ckpt-000000230.pt")
    assert state["position"]["global_step"] == 230
    flat = np.concatenate([t.double().numpy().ravel() for t in state["model"].values()])
    np.testing.assert_array_equal(flat, run.params(0))


def test_resume_skips_a_corrupt_newest_checkpoint_and_ends_like_an_uninterrupted_run(
        reference, hvd_gloo_run, tmp_path, example_job_spec):
    checkpoints = {"interval_steps": 20, "keep": 3}
    first = hvd_gloo_run.run(example_job_spec("digits-torch", tmp_path, train={"max_steps": 50},
                                          checkpoint=checkpoints), tmp_path / "first")
    assert first.returncode == 0, first.output[-3000:]
    assert (first.summary()["steps"], first.summary()["status"]) == (50, "max_steps")
    ckpt_dir = tmp_path / "checkpoints"
    assert sorted(p.name for p in ckpt_dir.glob("*.pt")) == [
        "ckpt-000000020.pt", "ckpt-000000040.pt", "ckpt-000000050.pt"]

    newest = ckpt_dir / "ckpt-000000050.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # a torn write

    second = hvd_gloo_run.run(example_job_spec("digits-torch", tmp_path, checkpoint=checkpoints), tmp_path / "second",
                              attempt=1)
    assert second.returncode == 0, second.output[-3000:]
    assert "skipping checkpoint ckpt-000000050.json" in second.output
    assert "resumed from" in second.output and "at step 40" in second.output
    summary = second.summary()
    assert (summary["resumed_from_step"], summary["steps"], summary["attempt"]) == (40, 230, 1)
    np.testing.assert_array_equal(second.params(0), second.params(1))
    np.testing.assert_allclose(second.params(0), reference.params(0), rtol=1e-6, atol=1e-7)


def test_fp16_compression_two_backward_passes_and_a_custom_model(hvd_gloo_run, tmp_path, example_job_spec):
    """Horovod options from the spec reach DistributedOptimizer; a module:function model next to the
    spec is used, and a PyTorch job never loads TensorFlow."""
    (tmp_path / "mymodels.py").write_text(textwrap.dedent("""
        import sys
        import torch

        def wide(input_shape, num_classes, width=96):
            assert "tensorflow" not in sys.modules, "a torch job imported TensorFlow"
            print(f"building wide model width={width}", flush=True)
            return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(input_shape[0], width),
                                       torch.nn.ReLU(), torch.nn.Linear(width, num_classes))
    """))
    spec = example_job_spec("digits-torch", tmp_path, base_dir=str(tmp_path),
                        train={"model": "mymodels:wide", "model_args": {"width": 96}, "epochs": 4},
                        horovod={"compression": "fp16", "backward_passes_per_step": 2})
    run = hvd_gloo_run.run(spec, tmp_path / "run")
    assert run.returncode == 0, run.output[-3000:]
    assert "building wide model width=96" in run.output
    summary = run.summary()
    assert summary["steps"] == 4 * 12  # 23 batches per epoch -> 12 optimizer steps of up to 2 batches
    assert summary["val_accuracy"] >= 0.90
    np.testing.assert_array_equal(run.params(0), run.params(1))
    assert run.params(0).size == 64 * 96 + 96 + 96 * 10 + 10


def test_the_stop_signal_on_one_rank_stops_all_with_exit_75_and_a_checkpoint_to_resume_from(
        hvd_gloo_run, tmp_path, wait_for_metrics, example_job_spec, find_rank_pids):
    checkpoints = {"interval_steps": 100000}
    spec = example_job_spec("digits-torch", tmp_path, train={"epochs": 500}, checkpoint=checkpoints)
    proc = hvd_gloo_run.start(spec, tmp_path / "stopped")
    wait_for_metrics(tmp_path / "stopped", proc, count=2)
    pids = find_rank_pids(tmp_path / "stopped")
    assert sorted(pids) == [0, 1]
    pids_before = dict(pids)
    os.kill(pids[1], signal.SIGUSR2)  # like Slurm's --signal (slurm.signal: USR2), but reaching only one rank
    stopped = hvd_gloo_run.wait(proc, tmp_path / "stopped", timeout=120)

    assert stopped.rank_exit_code() == EXIT_STOPPED, stopped.output[-3000:]
    for rank in (0, 1):
        assert f"rank {rank}: stopped at step" in stopped.output
    assert all(not Path(f"/proc/{pid}").exists() for pid in pids_before.values())
    summary = stopped.summary()
    assert summary["status"] == "stopped" and 0 < summary["steps"] < 500 * 23
    state = _load_checkpoint(Path(summary["checkpoint"]))
    assert state["position"]["global_step"] == summary["steps"]
    np.testing.assert_array_equal(stopped.params(0), stopped.params(1))

    target = summary["steps"] + 5  # resume from the file by name (resume: <path>) and train 5 more steps
    resumed = hvd_gloo_run.run(example_job_spec("digits-torch", tmp_path, train={"epochs": 500, "max_steps": target},
                                                checkpoint={**checkpoints, "resume": summary["checkpoint"]}),
                               tmp_path / "resumed", attempt=1)
    assert resumed.returncode == 0, resumed.output[-3000:]
    assert (resumed.summary()["resumed_from_step"], resumed.summary()["steps"]) == (summary["steps"], target)


def test_unwritable_checkpoint_dir_fails_before_training(hvd_gloo_run, tmp_path, example_job_spec):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the checkpoint directory's parent should be\n")
    spec = example_job_spec("digits-torch", tmp_path, checkpoint={"dir": str(blocker / "checkpoints")})
    run = hvd_gloo_run.run(spec, tmp_path / "run", timeout=120)
    assert run.rank_exit_code() == 2, run.output[-3000:]
    assert f"error: checkpoint.dir: checkpoint directory is not writable: Not a directory (got '{blocker}" \
        in run.output
    assert not re.search(r"^\[\d\]<stderr>:Traceback", run.output, re.M)  # a clean message, no rank traceback
    assert not (run.run_dir / "metrics.jsonl").exists()
    assert json.loads((run.run_dir / "spec.json").read_text())["checkpoint"]["dir"].startswith(str(blocker))
