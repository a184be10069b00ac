"""Built-in component options: validate rejects what the ranks would reject, from the shared table."""
from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from hvdrun_cli.errors import SpecError
from hvdrun_cli.spec import components, load_spec

ADAPTERS = Path(__file__).resolve().parents[2] / "adapters"


def load(tmp_path: Path, text: str):
    path = tmp_path / "job.yaml"
    path.write_text(text)
    return load_spec(str(path))


def problems(tmp_path: Path, text: str) -> list:
    with pytest.raises(SpecError) as info:
        load(tmp_path, text)
    return [str(p) for p in info.value.problems]


def test_unknown_data_args_key_is_located_with_a_suggestion(tmp_path: Path):
    found = problems(tmp_path, "framework: torch\ntrain:\n  data: digits\n  data_args:\n    val_fracton: 0.1\n")
    assert found == [f"{tmp_path}/job.yaml:5: train.data_args.val_fracton: not an option of data 'digits'"
                     " (valid: val_fraction); did you mean 'val_fraction'?"]


@pytest.mark.parametrize("text, fragment", [
    ("train: {data: synthetic, data_args: {classes: 1}}", "train.data_args.classes: must be a whole number from 2"),
    ("train: {data: synthetic, data_args: {samples: true}}", "train.data_args.samples: must be a whole number"),
    ("train: {data: digits, data_args: {val_fraction: 1.0}}", "must be a number in (0, 1)"),
    ("train: {model_args: {hidden: [64, 0]}}", "train.model_args.hidden: every entry must be a whole number"),
    ("train: {model: cnn, model_args: {dropout: 0.1}}", "not an option of model 'cnn' (valid: channels, hidden, num_classes)"),
    ("train: {model: cnn, data: synthetic, data_args: {features: 50}}", "train.model: model 'cnn' needs"),
    ("train: {optimizer: adam, optimizer_args: {beta_1: 0.9}}", "not an option of optimizer 'adam' (valid: betas"),
    ("train: {optimizer: sgd, optimizer_args: {nesterov: 1}}", "must be true or false"),
    ("train: {loss: huber}", "train.loss: unknown name; built-ins are 'cross_entropy', 'mse'"),
    ("train: {model: resnet}", "train.model: unknown name; built-ins are 'mlp', 'cnn'"),
])
def test_bad_builtin_options_fail_validation(tmp_path: Path, text: str, fragment: str):
    found = problems(tmp_path, "framework: torch\n" + text + "\n")
    assert len(found) == 1 and fragment in found[0], found


def test_optimizer_options_follow_the_framework(tmp_path: Path):
    spec = load(tmp_path, "framework: tensorflow\ntrain: {optimizer: Adam, optimizer_args: {beta_1: 0.8}}\n")
    assert spec.train.optimizer_args == {"beta_1": 0.8}
    assert "betas" in problems(tmp_path, "framework: tensorflow\ntrain: {optimizer: adam, "
                                         "optimizer_args: {betas: [0.9, 0.99]}}\n")[0]


def test_references_are_not_checked(tmp_path: Path):
    spec = load(tmp_path, "framework: torch\ntrain: {data: 'mine:make', data_args: {anything: 1}}\n")
    assert spec.train.data_args == {"anything": 1}


def test_good_options_pass(tmp_path: Path):
    load(tmp_path, "framework: torch\ntrain:\n  model: cnn\n  data: synthetic\n"
                   "  data_args: {samples: 64, features: [1, 8, 8], classes: 3}\n"
                   "  model_args: {channels: [4], hidden: 8}\n  optimizer: adamw\n"
                   "  optimizer_args: {betas: [0.9, 0.99], eps: 1.0e-8, amsgrad: true}\n")


def test_table_matches_the_rank_side_data_functions():
    from hvdrun_cli.adapters import data

    for name, fn in data.BUILTIN.items():
        params = [p for p in inspect.signature(fn).parameters if p != "seed"]
        assert tuple(params) == components.option_names("data", name)


def _literal(path: Path, name: str):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return node.value
    return None


@pytest.mark.parametrize("module, framework", [("torch_build.py", "torch"), ("keras_build.py", "tensorflow")])
def test_table_matches_the_rank_side_builders(module: str, framework: str):
    """The option names the framework builders accept (read from their source: no framework import)."""
    source = ADAPTERS / module
    optimizers = _literal(source, "_OPTIMIZER_ARGS")
    models = _literal(source, "MODELS")
    assert optimizers is not None and models is not None, f"{module} no longer lists its options"
    assert {k: tuple(v) for k, v in ast.literal_eval(optimizers).items()} == {
        name: components.option_names("optimizer", name, framework) for name in ("sgd", "adam", "adamw")}
    for key, value in zip(models.keys, models.values):
        options = ast.literal_eval(value.elts[1])
        # num_classes is taken for every built-in model before its builder is called (it overrides the
        # class count read from the data), so the builders do not list it.
        assert options + ("num_classes",) == components.option_names("model", key.value)
