"""The rank side's framework-free parts: checkpoint files, schedule, thread sizing, reporting,
``module:function`` resolution, the Keras alias hook and the worker's spec reading."""
from __future__ import annotations

import importlib.machinery
import json
import os
import subprocess
import sys
import types

import pytest

from hvdrun_cli.adapters import keras_compat, plugins, rankenv
from hvdrun_cli.adapters.base import RankContext
from hvdrun_cli.adapters.checkpoint import CheckpointStore, Position, atomic_write
from hvdrun_cli.adapters.reporting import Reporter
from hvdrun_cli.adapters.schedule import LrSchedule, make_schedule, scaled_lr
from hvdrun_cli.adapters.worker import read_spec
from hvdrun_cli.errors import UserInputError
from hvdrun_cli.spec.model import JobSpec, TrainSpec


def _save(store: CheckpointStore, step: int, body: bytes = b"") -> str:
    return store.save(step, lambda f: f.write(body or f"weights at {step}".encode()), {"position": {"step": step}})


# ----- checkpoint files ---------------------------------------------------------------------------

def test_store_keeps_the_newest_checkpoints_and_leaves_no_temp_files(tmp_path):
    store = CheckpointStore(str(tmp_path), keep=2, suffix=".pt")
    for step in (10, 20, 30, 40):
        _save(store, step)
    assert sorted(os.listdir(tmp_path)) == ["ckpt-000000030.json", "ckpt-000000030.pt",
                                            "ckpt-000000040.json", "ckpt-000000040.pt"]
    checkpoint, body = store.load_newest(lambda c: open(c.payload, "rb").read())
    assert (checkpoint.step, body) == (40, b"weights at 40")
    assert checkpoint.meta["position"] == {"step": 40}


def test_corrupt_or_uncommitted_newest_checkpoint_is_skipped_with_a_warning(tmp_path, capsys):
    store = CheckpointStore(str(tmp_path), keep=0, suffix=".pt")
    _save(store, 10)
    newest = _save(store, 20)
    with open(newest, "r+b") as f:  # same length, one byte flipped
        f.write(b"X")
    (tmp_path / "ckpt-000000030.pt").write_bytes(b"payload written, sidecar never committed")
    checkpoint, _ = store.load_newest(lambda c: None)
    assert checkpoint.step == 10
    assert "warning: skipping checkpoint ckpt-000000020.json: payload ckpt-000000020.pt does not match its " \
           "recorded SHA-256" in capsys.readouterr().err


def test_a_checkpoint_that_fails_to_load_is_skipped(tmp_path, capsys):
    store = CheckpointStore(str(tmp_path), keep=0, suffix=".pt")
    _save(store, 10, b"good")
    _save(store, 20, b"bad")

    def load(checkpoint):
        body = open(checkpoint.payload, "rb").read()
        if body == b"bad":
            raise ValueError("not a checkpoint of this job")
        return body

    assert store.load_newest(load)[1] == b"good"
    assert "skipping checkpoint ckpt-000000020.json: not a checkpoint of this job" in capsys.readouterr().err
    assert CheckpointStore(str(tmp_path / "empty"), keep=1, suffix=".pt").load_newest(load) is None


def test_failed_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "summary.json"
    atomic_write(str(target), lambda f: f.write(b"old"))

    def crash(f):
        f.write(b"half of the new")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(str(target), crash)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["summary.json"]


def test_unwritable_checkpoint_dir_is_an_input_error_naming_the_key(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserInputError) as info:
        CheckpointStore(str(blocker / "ckpt"), keep=1, suffix=".pt").ensure_writable()
    assert str(info.value) == f"checkpoint.dir: checkpoint directory is not writable: Not a directory " \
                              f"(got '{blocker / 'ckpt'}')"


def test_resume_from_a_named_missing_file_is_an_input_error(tmp_path):
    store = CheckpointStore(str(tmp_path), keep=1, suffix=".pt")
    with pytest.raises(UserInputError) as info:
        store.load_path(str(tmp_path / "nope.pt"), lambda c: None)
    assert info.value.problems[0].key == "checkpoint.resume"
    assert "no such file" in str(info.value)


def test_a_finished_epoch_resumes_at_the_next_one():
    assert Position(2, 23, 69).normalized(23) == Position(3, 0, 69)
    assert Position(2, 5, 51).normalized(23) == Position(2, 5, 51)
    assert Position.from_dict(Position(1, 2, 3).as_dict()) == Position(1, 2, 3)


# ----- learning rate ------------------------------------------------------------------------------

def test_lr_scaling_rules():
    assert scaled_lr(0.1, "none", 4) == 0.1
    assert scaled_lr(0.1, "linear", 4) == pytest.approx(0.4)
    assert scaled_lr(0.1, "sqrt", 4) == pytest.approx(0.2)
    with pytest.raises(UserInputError, match="train.lr_scaling"):
        scaled_lr(0.1, "cubic", 4)


def test_warmup_follows_horovods_keras_callback():
    """Horovod: lr = initial_lr / size * (epoch * (size - 1) / warmup_epochs + 1), epoch = (batch + 1) / spe."""
    size, steps_per_epoch, warmup_epochs = 4, 10, 2
    schedule = make_schedule(0.05, "linear", size, warmup_epochs, steps_per_epoch)
    for step in range(warmup_epochs * steps_per_epoch):
        epoch = (step + 1) / steps_per_epoch
        expected = 0.2 / size * (epoch * (size - 1) / warmup_epochs + 1)
        assert schedule.at(step) == pytest.approx(expected)
    assert schedule.at(warmup_epochs * steps_per_epoch + 5) == pytest.approx(0.2)
    assert LrSchedule(0.3, 1, 100).at(0) == 0.3  # one rank: nothing to warm up from


# ----- threads ------------------------------------------------------------------------------------

@pytest.mark.parametrize("tasks, node, expected", [("2(x3),1", 0, 2), ("2(x3),1", 3, 1), ("4", 0, 4),
                                                   ("2(x2)", 5, None), ("garbage", 0, None)])
def test_slurm_tasks_per_node_expansion(tasks, node, expected):
    assert rankenv.slurm_tasks_on_node(tasks, node) == expected


def test_threads_per_rank_precedence():
    assert rankenv.threads_per_rank(3, {"OMP_NUM_THREADS": "8"}, cores=16) == 3
    assert rankenv.threads_per_rank(None, {"HVDJOB_THREADS_PER_RANK": "2", "OMP_NUM_THREADS": "8"}, cores=16) == 2
    assert rankenv.threads_per_rank(None, {"OMP_NUM_THREADS": "8"}, cores=16) == 8
    assert rankenv.threads_per_rank(None, {"HOROVOD_LOCAL_SIZE": "4"}, cores=16) == 4
    assert rankenv.threads_per_rank(None, {"OMPI_COMM_WORLD_LOCAL_SIZE": "3"}, cores=2) == 1
    assert rankenv.threads_per_rank(None, {"SLURM_STEP_TASKS_PER_NODE": "2(x2)", "SLURM_NODEID": "1"}, cores=8) == 4


def test_thread_env_reaches_openmp_and_tensorflow():
    env: dict = {}
    rankenv.export_thread_env(1, env)
    assert env == {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1",
                   "TF_NUM_INTEROP_THREADS": "2"}


# ----- reporting ----------------------------------------------------------------------------------

def test_only_rank_0_reports(tmp_path, capsys):
    for rank in (1, 0):
        reporter = Reporter(RankContext(rank, 2, rank, 2, str(tmp_path), attempt=1), total_steps=40, epochs=2,
                            log_interval=20)
        reporter.first_step()
        assert reporter.due(20) and not reporter.due(21)
        reporter.progress(epoch=0, global_step=20, loss=0.5, accuracy=0.75, lr=0.1, samples_done=1280)
        reporter.validation(epoch=0, global_step=20, loss=0.4, accuracy=0.8)
        summary = reporter.summary(framework="torch", status="completed", steps=40, epochs_done=2.0, samples=2560,
                                   train_loss=0.3, train_accuracy=0.9, val_loss=0.4, val_accuracy=0.8,
                                   resumed_from_step=None, process_start=reporter.train_start - 2, checkpoint=None)
        if rank == 1:  # other ranks print nothing and keep only their own timing record
            assert capsys.readouterr().out == "" and os.listdir(tmp_path) == ["timing"]
            assert os.listdir(tmp_path / "timing") == ["rank.1.jsonl"]
    out = capsys.readouterr().out
    assert out.startswith("epoch 1/2 step 20/40 loss 0.5000 accuracy 0.7500 lr 0.1 ")
    assert "epoch 1/2 validation loss 0.4000 accuracy 0.8000" in out
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["kind"], r["step"]) for r in records] == [("train", 20), ("validation", 20)]
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written == summary
    assert (written["world_size"], written["attempt"], written["val_accuracy"]) == (2, 1, 0.8)
    assert written["wall_time_s"] >= 2


def test_throughput_counts_training_steps_not_the_final_checkpoint(tmp_path, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("hvdrun_cli.adapters.reporting.time.time", lambda: clock[0])
    reporter = Reporter(RankContext(0, 1, 0, 1, str(tmp_path), attempt=0), total_steps=10, epochs=1, log_interval=5)
    reporter.first_step()
    clock[0] += 4.0  # ten steps
    reporter.training_ended()
    clock[0] += 6.0  # the final checkpoint of a large model
    summary = reporter.summary(framework="torch", status="completed", steps=10, epochs_done=1.0, samples=400,
                               train_loss=0.3, train_accuracy=0.9, val_loss=None, val_accuracy=None,
                               resumed_from_step=None, process_start=999.0, checkpoint=None)
    assert (summary["train_time_s"], summary["samples_per_sec"], summary["wall_time_s"]) == (4.0, 100.0, 11.0)


# ----- module:function references -----------------------------------------------------------------

def test_references_resolve_next_to_the_spec_and_fail_with_the_key(tmp_path, monkeypatch):
    (tmp_path / "custom_parts_for_test.py").write_text("def build(input_shape, width=3):\n"
                                                       "    return (input_shape, width)\n")
    monkeypatch.setattr(sys, "path", list(sys.path))
    spec = JobSpec(framework="torch", name="x", base_dir=str(tmp_path))
    fn = plugins.resolve("custom_parts_for_test:build", "train.model", spec)
    assert plugins.call_factory(fn, {"input_shape": (64,), "num_classes": 10}, {"width": 5}) == ((64,), 5)
    with pytest.raises(UserInputError) as info:
        plugins.resolve("custom_parts_for_test:missing", "train.model", spec)
    assert str(info.value) == ("train.model: 'custom_parts_for_test' has no attribute 'missing' "
                               "(got 'custom_parts_for_test:missing')")
    with pytest.raises(UserInputError, match="train.data: module 'no_such_module_here' not found"):
        plugins.resolve("no_such_module_here:x", "train.data", spec)


def test_builtin_data_args_are_checked_by_name():
    from hvdrun_cli.adapters.data import load_data

    spec = JobSpec(framework="torch", name="x", train=TrainSpec(data="digits", data_args={"val_fractoin": 0.1}))
    with pytest.raises(UserInputError) as info:
        load_data(spec)
    assert str(info.value) == "train.data_args.val_fractoin: not an option of data 'digits' (valid: val_fraction)"


def test_digits_split_is_fixed_by_seed_and_standardized():
    from hvdrun_cli.adapters.data import digits

    a, b, c = digits(seed=1), digits(seed=1), digits(seed=2)
    assert (len(a.x_train), len(a.x_val), a.input_shape, a.num_classes) == (1438, 359, (64,), 10)
    assert (a.y_val == b.y_val).all() and not (a.y_val == c.y_val).all()
    assert abs(float(a.x_train.mean())) < 1e-5


# ----- Keras alias --------------------------------------------------------------------------------

def test_keras_names_map_to_tf_keras_without_importing_anything():
    finder = keras_compat.KerasAliasFinder()
    spec = finder.find_spec("keras.backend")
    assert isinstance(spec, importlib.machinery.ModuleSpec) and spec.loader.target == "tf_keras.backend"
    assert finder.find_spec("keras").loader.target == "tf_keras"
    assert finder.find_spec("kerastuner") is None and finder.find_spec("numpy") is None


def test_alias_is_not_installed_over_an_already_imported_keras(monkeypatch):
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    monkeypatch.setitem(sys.modules, "keras", types.ModuleType("keras"))
    monkeypatch.delenv("TF_USE_LEGACY_KERAS", raising=False)
    assert keras_compat.install_keras_alias() is False
    assert not any(isinstance(f, keras_compat.KerasAliasFinder) for f in sys.meta_path)
    assert os.environ["TF_USE_LEGACY_KERAS"] == "1"


# ----- worker -------------------------------------------------------------------------------------

def test_unreadable_spec_is_a_clean_error(tmp_path):
    bad = tmp_path / "spec.json"
    bad.write_text("{not json")
    with pytest.raises(UserInputError, match=f"^{bad}: not a resolved job spec"):
        read_spec(str(bad))
    bad.write_text(json.dumps(JobSpec(framework="jax", name="x").to_dict()))
    with pytest.raises(UserInputError, match="framework: must be one of torch, tensorflow"):
        read_spec(str(bad))


def test_worker_and_helpers_import_no_framework():
    code = ("import sys, hvdrun_cli.adapters.worker, hvdrun_cli.adapters as a; a.scaled_lr; "
            "print(sorted(m for m in ('torch', 'tensorflow', 'horovod', 'keras') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


def test_a_model_function_given_arguments_it_does_not_take_is_refused_naming_the_key():
    def build(input_shape, num_classes, width=32):
        raise AssertionError("must not be called")

    with pytest.raises(UserInputError) as info:
        plugins.call_factory(build, {"input_shape": (8,)}, {"num_classes": 10, "widht": 64},
                             "train.model_args", "mymodel:build")
    assert str(info.value.problems[0]) == ("train.model_args.widht: mymodel:build takes no argument 'widht' "
                                           "(it takes: input_shape, num_classes, width)")

    def needs_depth(input_shape, depth):
        raise AssertionError("must not be called")

    with pytest.raises(UserInputError, match=r"train.model_args: m:f needs 'depth'; give it in train.model_args"):
        plugins.call_factory(needs_depth, {"input_shape": (8,)}, {}, "train.model_args", "m:f")


def test_a_type_error_inside_the_users_function_is_theirs_and_propagates():
    def build(input_shape, width=32):
        return len(width)  # the user's own bug: a traceback into their code is what helps

    with pytest.raises(TypeError, match="has no len"):
        plugins.call_factory(build, {"input_shape": (8,)}, {"width": 3})
    assert plugins.call_factory(lambda **kw: sorted(kw), {"input_shape": (8,)}, {"a": 1}) == ["a", "input_shape"]


def test_an_optimizer_function_is_checked_with_the_parameters_hvdjob_passes_first():
    def make(params, lr, momentum=0.0):
        return ("sgd", params, lr, momentum)

    assert plugins.call_checked(make, ([1],), {"lr": 0.1, "momentum": 0.9}, "train.optimizer_args", "o:make") == \
        ("sgd", [1], 0.1, 0.9)
    with pytest.raises(UserInputError, match=r"^train.optimizer_args.mom: o:make takes no argument 'mom'"):
        plugins.call_checked(make, ([1],), {"lr": 0.1, "mom": 0.9}, "train.optimizer_args", "o:make")
    with pytest.raises(UserInputError, match=r"o:make cannot be called as hvdjob calls it \(1 positional"):
        plugins.call_checked(lambda: None, ([1],), {}, "train.optimizer_args", "o:make")
