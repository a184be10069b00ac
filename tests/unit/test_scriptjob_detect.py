"""Reading a script's framework from its imports, without running it."""
from __future__ import annotations

from pathlib import Path

import pytest

from hvdrun_cli.errors import UserInputError
from hvdrun_cli.scriptjob.detect import detect_framework, framework_of
from hvdrun_cli.scriptjob.document import job_name


@pytest.mark.parametrize("source, framework, module", [
    ("import horovod.torch as hvd\n", "torch", "horovod.torch"),
    ("from horovod import torch as hvd\n", "torch", "horovod.torch"),
    ("import horovod.torch.elastic\n", "torch", "horovod.torch"),
    ("import horovod.tensorflow as hvd\n", "tensorflow", "horovod.tensorflow"),
    ("import horovod.tensorflow.keras as hvd\n", "tensorflow", "horovod.tensorflow.keras"),
    ("from horovod.tensorflow.keras import callbacks\n", "tensorflow", "horovod.tensorflow.keras"),
    ("import horovod.keras as hvd\n", "tensorflow", "horovod.keras"),
    # Horovod's modules decide over plain framework imports (a torch script that logs with tf.summary).
    ("import tensorflow as tf\nimport horovod.torch as hvd\n", "torch", "horovod.torch"),
    # no Horovod import (hvdjob's helpers): the plain framework import says it
    ("import torch\nfrom hvdrun_cli.adapters import torch_setup\n", "torch", "torch"),
    ("def main():\n    import tensorflow as tf\n", "tensorflow", "tensorflow"),
])
def test_framework_from_imports(source: str, framework: str, module: str) -> None:
    found = framework_of(source)
    assert (found.framework, found.module) == (framework, module)


def test_the_line_of_the_import_is_named(tmp_path: Path) -> None:
    script = tmp_path / "t.py"
    script.write_text('"""doc"""\nimport os\n\nimport horovod.torch as hvd\n')
    assert detect_framework(str(script)).describe() == "read from its imports: horovod.torch (line 4)"


@pytest.mark.parametrize("source, fragment", [
    ("print('hello')\n", "imports none of horovod.torch, horovod.keras, horovod.tensorflow, horovod.tensorflow.keras"),
    ("import horovod.torch\nimport horovod.tensorflow\n",
     "imports both horovod.torch (line 1) and horovod.tensorflow (line 2)"),
    ("def broken(:\n", "t.py:1: is not valid Python"),
])
def test_undecidable_scripts_ask_for_framework(tmp_path: Path, source: str, fragment: str) -> None:
    script = tmp_path / "t.py"
    script.write_text(source)
    with pytest.raises(UserInputError) as info:
        detect_framework(str(script))
    text = str(info.value.problems[0])
    assert fragment in text and "--framework" in text and len(info.value.problems) == 1


@pytest.mark.parametrize("path, name", [
    ("train.py", "train"), ("dir/my train.py", "my-train"), ("_x.py", "x"), ("-.py", "job"), ("2nd.py", "2nd"),
])
def test_job_names_from_script_names_are_valid(path: str, name: str) -> None:
    assert job_name(path) == name
