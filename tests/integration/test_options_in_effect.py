"""Each Horovod/training option of a managed job is shown to take effect, observably, through ``hvdjob run``.

Nothing here imports the rank side: the evidence is what a user could look at too.
- Horovod's own timeline (``horovod.timeline``) records every tensor it reduced, with its dtype and
  shape: fp16 compression shows as float16 gradients, ``backward_passes_per_step`` as fewer reductions.
- Final parameters (``HVDJOB_PARAM_DUMP``) of two runs are compared where arithmetic says they must
  be bit-identical or must differ: ``reduction: sum`` with half the learning rate equals ``average``
  (scaling by 2 is exact in binary floating point); two accumulated half batches approximate one
  full batch; ``gradient_predivide_factor`` keeps an fp16 gradient sum that would overflow finite.
- A custom model (``module:function`` next to the spec) prints the dtype its forward pass computes
  in, which is how mixed precision shows.
- ``reduction: adasum`` over Gloo is refused with its message.
"""
from __future__ import annotations

import json
import re
import shutil
import textwrap
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import pytest
import yaml

from tests.hvdjob_process import Finished, processes_of_run, run_hvdjob

pytestmark = pytest.mark.integration

HIDDEN_WEIGHT = "[64, 64]"  # shape of the first layer's weight (64 inputs, 64 hidden) in both frameworks


class Run:
    """One finished ``hvdjob run`` and what it left: output, timeline, rank-0 parameters."""

    def __init__(self, finished: Finished, workdir: Path) -> None:
        self.finished, self.workdir = finished, workdir

    @property
    def output(self) -> str:
        return self.finished.output

    def params(self, rank: int = 0) -> np.ndarray:
        return np.load(self.workdir / "params" / f"rank{rank}.npy")

    def reductions(self) -> Dict[str, List[Tuple[str, str]]]:
        """tensor name -> [(dtype, shape)] of every reduction Horovod's timeline recorded for it."""
        text = (self.workdir / "timeline.json").read_text().rstrip().rstrip(",")
        events = json.loads(text if text.endswith("]") else text + "]")
        names = {e["pid"]: e["args"]["name"] for e in events
                 if e.get("name") == "process_name" and "name" in e.get("args", {})}
        found: Dict[str, List[Tuple[str, str]]] = defaultdict(list)
        for event in events:  # the end of an operation carries the dtype and shape of what was reduced
            if event.get("ph") == "E" and "dtype" in event.get("args", {}):
                found[names.get(event["pid"], "?")].append((event["args"]["dtype"], event["args"]["shape"]))
        return found

    def gradient_reductions(self, shape: str = HIDDEN_WEIGHT) -> List[str]:
        """dtypes of the reductions of the gradient whose shape is ``shape`` (one entry per reduction)."""
        hits = {name: [d for d, s in seen if s == shape] for name, seen in self.reductions().items()}
        hits = {name: dtypes for name, dtypes in hits.items() if dtypes and "allreduce" in name.lower()}
        assert len(hits) == 1, f"expected one gradient of shape {shape} in the timeline, found {sorted(hits)}"
        return next(iter(hits.values()))


def run_job(tmp_path: Path, label: str, spec: dict, *sets: str, files: Sequence[Tuple[str, str]] = (),
            expect: int = 0) -> Run:
    """``hvdjob run`` of ``spec`` in a fresh directory, with Horovod's timeline and a parameter dump."""
    workdir = tmp_path / label
    workdir.mkdir()
    for name, body in files:
        (workdir / name).write_text(textwrap.dedent(body))
    (workdir / "job.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    finished = run_hvdjob("run", "job.yaml", "--set", f"horovod.timeline={workdir / 'timeline.json'}", *sets,
                          cwd=workdir, env={"HVDJOB_PARAM_DUMP": str(workdir / "params")}, timeout=300)
    assert finished.returncode == expect, finished.output[-4000:]
    if expect == 0:
        assert processes_of_run(finished.run_dir().name) == []
    return Run(finished, workdir)


def digits(framework: str, **train: object) -> dict:
    """The shipped digits job, short, deterministic, without warmup (so the step count does not move rates)."""
    return {
        "framework": framework, "name": f"digits-{framework}", "launcher": "gloo", "resources": {"np": 2},
        "train": {"model": "mlp", "model_args": {"hidden": [64]}, "data": "digits", "epochs": 1,
                  "batch_size": 32, "optimizer": "sgd", "lr": 0.05, "lr_scaling": "linear", "momentum": 0.9,
                  "max_steps": 8, "log_interval": 4, "validate": False, "seed": 42, "deterministic": True,
                  **train},
        "checkpoint": {"interval_steps": 1000, "resume": "never"},
    }


# ---- PyTorch: reduction, backward passes, compression, predivide, mixed precision --------------------

@pytest.fixture(scope="module")
def torch_average(tmp_path_factory) -> Run:
    """The reference: average reduction, lr 0.05 (x2 ranks), batch 32, one backward pass per step."""
    return run_job(tmp_path_factory.mktemp("torch-average"), "run", digits("torch"))


def test_torch_sum_reduction_with_half_the_rate_is_bit_identical_to_average(torch_average, tmp_path) -> None:
    """sum = 2 x average exactly, so sum at lr/2 must give the same bits; average at lr/2 would not."""
    summed = run_job(tmp_path, "sum", digits("torch", lr=0.025), "--set", "horovod.reduction=sum")
    np.testing.assert_array_equal(summed.params(0), summed.params(1))
    assert np.array_equal(summed.params(), torch_average.params()), "reduction: sum did not sum the gradients"
    assert torch_average.gradient_reductions() == ["float32"] * 8  # one reduction per step, uncompressed


def test_torch_two_backward_passes_of_half_batches_make_one_full_batch_step(torch_average, tmp_path) -> None:
    """Two accumulated batches of 16 are the same samples as one of 32: same update up to rounding, and
    Horovod reduces once per optimizer step (8), not once per backward pass (16)."""
    halves = run_job(tmp_path, "halves", digits("torch", batch_size=16),
                     "--set", "horovod.backward_passes_per_step=2")
    assert halves.gradient_reductions() == ["float32"] * 8
    reference, got = torch_average.params(), halves.params()
    np.testing.assert_allclose(got, reference, rtol=1e-4, atol=1e-6)


BIG_GRADIENT = """
    import gc

    import torch

    class Bias(torch.nn.Module):
        '''Logits = one bias vector, so each rank's gradient is exactly what the loss below says.'''

        def __init__(self, num_classes):
            super().__init__()
            self.bias = torch.nn.Parameter(torch.zeros(num_classes))
            self.reported = False

        def forward(self, x):
            probe = torch.ones(2, 2) @ torch.ones(2, 2)  # autocast decides this dtype
            if not self.reported:
                print(f"forward computes in {probe.dtype}", flush=True)
                print(f"collector on: {gc.isenabled()}, frozen: {gc.get_freeze_count()}", flush=True)
                self.reported = True
            return self.bias.expand(x.shape[0], -1) + 0 * x[:, :1]

    def bias(input_shape, num_classes):
        return Bias(num_classes)

    def big(outputs, targets):
        '''d loss / d bias = 40000 per class on every rank: fits in fp16 (max 65504), the sum of two does not.'''
        return 40000.0 * outputs.sum() / outputs.shape[0]
"""


def _big_gradient_job() -> dict:
    return digits("torch", model="biggrad:bias", model_args={}, loss="biggrad:big", lr=1e-6, lr_scaling="none", momentum=0.0,
                  max_steps=2, deterministic=False)


@pytest.fixture(scope="module")
def big_gradient_fp32(tmp_path_factory) -> Run:
    return run_job(tmp_path_factory.mktemp("biggrad"), "fp32", _big_gradient_job(), files=[("biggrad.py", BIG_GRADIENT)])


def test_torch_fp16_compression_reduces_float16_and_predivide_keeps_its_sum_finite(big_gradient_fp32,
                                                                                   tmp_path) -> None:
    fp16 = ("--set", "horovod.compression=fp16")
    overflow = run_job(tmp_path, "fp16", _big_gradient_job(), *fp16, files=[("biggrad.py", BIG_GRADIENT)])
    predivided = run_job(tmp_path, "fp16-predivide", _big_gradient_job(), *fp16,
                         "--set", "horovod.gradient_predivide_factor=2", files=[("biggrad.py", BIG_GRADIENT)])

    shape = "[10]"
    assert big_gradient_fp32.gradient_reductions(shape) == ["float32"] * 2
    assert overflow.gradient_reductions(shape) == ["float16"] * 2  # compression: Horovod reduced half floats
    assert predivided.gradient_reductions(shape) == ["float16"] * 2
    # 40000 + 40000 overflows float16: without predivision the averaged gradient is inf ...
    assert not np.isfinite(overflow.params()).all()
    # ... predivided by 2 first, 20000 + 20000 fits, and the update equals the float32 one bit for bit.
    assert np.isfinite(predivided.params()).all()
    np.testing.assert_array_equal(predivided.params(), big_gradient_fp32.params())
    np.testing.assert_array_equal(predivided.params(), predivided.params(1))


def test_torch_mixed_precision_runs_the_forward_pass_under_bfloat16_autocast(big_gradient_fp32, tmp_path) -> None:
    mixed = run_job(tmp_path, "mixed", _big_gradient_job(), "--set", "train.mixed_precision=true",
                    files=[("biggrad.py", BIG_GRADIENT)])
    assert re.search(r"^\[0\] forward computes in torch\.bfloat16$", mixed.finished.stdout, re.M), mixed.output
    assert re.search(r"^\[0\] forward computes in torch\.float32$", big_gradient_fp32.finished.stdout, re.M)


def test_training_runs_with_the_collector_on_and_the_start_up_objects_frozen(big_gradient_fp32) -> None:
    """The collector is paused while a rank imports and builds (start-up time), never while it trains."""
    found = re.findall(r"^\[(\d)\] collector on: (\w+), frozen: (\d+)$", big_gradient_fp32.finished.stdout, re.M)
    assert sorted(rank for rank, _, _ in found) == ["0", "1"], big_gradient_fp32.output
    for _, enabled, frozen in found:
        assert enabled == "True"
        assert int(frozen) > 100_000  # torch, Horovod and the job's own objects: never scanned again


def test_adasum_over_gloo_is_refused_with_its_reason_and_no_training(tmp_path) -> None:
    refused = run_job(tmp_path, "adasum", digits("torch"), "--set", "horovod.reduction=adasum", expect=2)
    assert "horovod.reduction: adasum needs Horovod's MPI controller (launcher: mpi or srun)" in refused.output
    assert "Traceback" not in refused.output
    assert not (refused.workdir / "params").exists() and not list(refused.workdir.glob("runs/*/checkpoints/*.pt"))


@pytest.mark.mpirun
def test_adasum_over_mpi_trains(tmp_path) -> None:
    """The refusal above is about Gloo: the same job under mpirun runs Adasum and trains."""
    if not shutil.which("mpirun"):
        pytest.skip("mpirun is not installed")
    adasum = run_job(tmp_path, "adasum-mpi", digits("torch"), "--set", "horovod.reduction=adasum",
                     "--set", "launcher=mpi")
    np.testing.assert_array_equal(adasum.params(0), adasum.params(1))
    assert adasum.gradient_reductions() == ["float32"] * 8


# ---- Keras: compression, backward passes, mixed precision ---------------------------------------------

KERAS_PROBE = """
    import tensorflow as tf

    keras = tf.keras

    class Probe(keras.layers.Layer):
        '''Passes its input through; says (once, when the graph is traced) which dtype the forward pass uses.'''

        def call(self, inputs):
            print(f"forward computes in {inputs.dtype.name}", flush=True)
            return inputs

    def mlp(input_shape, num_classes):
        return keras.Sequential([keras.layers.Input(shape=input_shape), keras.layers.Flatten(),
                                 keras.layers.Dense(64, activation="relu"), Probe(),
                                 keras.layers.Dense(num_classes, dtype="float32")])
"""


def _keras_job(**train: object) -> dict:
    return digits("tensorflow", model="probe:mlp", model_args={}, **train)


@pytest.fixture(scope="module")
def keras_runs(tmp_path_factory) -> Dict[str, Run]:
    """Three short Keras runs: mixed precision (average), the same with sum at lr/2, fp16 + 2 passes."""
    work = tmp_path_factory.mktemp("keras")
    probe = [("probe.py", KERAS_PROBE)]
    mixed = ("--set", "train.mixed_precision=true")
    return {
        "mixed": run_job(work, "mixed", _keras_job(), *mixed, files=probe),
        "sum": run_job(work, "sum", _keras_job(lr=0.025), *mixed, "--set", "horovod.reduction=sum", files=probe),
        "options": run_job(work, "options", _keras_job(), "--set", "horovod.compression=fp16",
                           "--set", "horovod.backward_passes_per_step=2", files=probe),
    }


def test_keras_fp16_compression_and_two_backward_passes_reach_horovod(keras_runs) -> None:
    # 8 batches: one float32 reduction each without options; with them, float16 every second batch.
    assert keras_runs["mixed"].gradient_reductions() == ["float32"] * 8
    assert keras_runs["options"].gradient_reductions() == ["float16"] * 4
    np.testing.assert_array_equal(keras_runs["options"].params(0), keras_runs["options"].params(1))


def test_keras_mixed_precision_runs_the_hidden_layers_in_bfloat16(keras_runs) -> None:
    """The probe sits after the hidden layer: bfloat16 under the mixed_bfloat16 policy, float32 without."""
    mixed, plain = keras_runs["mixed"].finished, keras_runs["options"].finished
    assert re.search(r"^\[0\] forward computes in bfloat16$", mixed.stdout, re.M), mixed.output[-3000:]
    assert re.search(r"^\[0\] forward computes in float32$", plain.stdout, re.M), plain.output[-3000:]


def test_keras_sum_reduction_with_half_the_rate_is_bit_identical_to_average(keras_runs) -> None:
    summed, averaged = keras_runs["sum"], keras_runs["mixed"]
    np.testing.assert_array_equal(summed.params(0), summed.params(1))
    assert np.array_equal(summed.params(), averaged.params()), "reduction: sum did not sum the gradients"
