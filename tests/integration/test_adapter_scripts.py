"""Script mode (users' own Horovod scripts, unchanged) and the worker's clean failures."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

from hvdrun_cli.spec.model import JobSpec, TrainSpec

pytestmark = pytest.mark.integration
EPOCH_LINE = re.compile(r"^\[0\]<stdout>:epoch (\d+):.*val accuracy ([0-9.]+)$", re.M)


def _final_accuracy(output: str, epochs: int) -> float:
    lines = EPOCH_LINE.findall(output)
    assert [int(e) for e, _ in lines] == list(range(1, epochs + 1)), output[-3000:]
    return float(lines[-1][1])


@pytest.mark.parametrize("job", ["script-torch", "script-helpers", "script-tensorflow"])
def test_example_script_job_runs_and_learns(job, hvd_gloo_run, tmp_path, example_job_spec):
    """The shipped script examples: plain Horovod PyTorch, the helpers, plain horovod.tensorflow.keras."""
    spec = example_job_spec(job, tmp_path)
    run = hvd_gloo_run.run(spec, tmp_path / "run")
    assert run.returncode == 0, run.output[-3000:]
    epochs = int(spec.args[spec.args.index("--epochs") + 1])
    assert _final_accuracy(run.output, epochs) >= 0.90
    assert f"{spec.framework} script {spec.script}" in run.output  # the worker's start line on rank 0


def _worker(spec: JobSpec, tmp_path, extra_env=None) -> subprocess.CompletedProcess:
    """One worker process without Horovod (script mode never calls hvd.init itself)."""
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec.to_dict()))
    env = {**os.environ, "HVDJOB_SPEC": str(spec_path), "HVDJOB_RUN_DIR": str(tmp_path), **(extra_env or {})}
    env.pop("TF_USE_LEGACY_KERAS", None)
    return subprocess.run([sys.executable, "-m", "hvdrun_cli.adapters.worker"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=180, check=False)


def test_script_runs_like_python_script_with_lazy_legacy_keras(tmp_path):
    script_dir = tmp_path / "code"
    script_dir.mkdir()
    (script_dir / "sibling.py").write_text("VALUE = 'imported from the script directory'\n")
    (script_dir / "train.py").write_text(textwrap.dedent("""
        import os, sys
        import sibling
        print("argv", sys.argv[1:])
        print("name", __name__)
        print("sibling", sibling.VALUE)
        print("tf before keras", "tensorflow" in sys.modules)
        import keras
        from keras import backend as K
        print("keras is", keras.__name__, K.__name__)
        print("legacy", os.environ.get("TF_USE_LEGACY_KERAS"))
        sys.exit(3)
    """))
    spec = JobSpec(framework="tensorflow", name="probe", script=str(script_dir / "train.py"),
                   args=("--epochs", "2", "two words"))
    done = _worker(spec, tmp_path)
    assert done.returncode == 3, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert "argv ['--epochs', '2', 'two words']" in lines
    assert "name __main__" in lines
    assert "sibling imported from the script directory" in lines
    assert "tf before keras False" in lines  # nothing heavy is imported before the script asks for it
    assert "keras is tf_keras tf_keras.backend" in lines
    assert "legacy 1" in lines


def test_worker_without_spec_variable_is_a_clean_input_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HVDJOB_SPEC"}
    done = subprocess.run([sys.executable, "-m", "hvdrun_cli.adapters.worker"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: HVDJOB_SPEC is not set; start ranks with `hvdjob run`"


def test_unknown_model_name_fails_on_all_ranks_with_exit_2(hvd_gloo_run, tmp_path):
    spec = JobSpec(framework="torch", name="bad", train=TrainSpec(model="resnet9000"), run_root=str(tmp_path))
    run = hvd_gloo_run.run(spec, tmp_path / "run", timeout=120)
    assert run.rank_exit_code() == 2, run.output[-3000:]
    assert ("error: train.model: unknown name; built-ins are mlp, cnn, or use 'module:function' "
            "(got 'resnet9000')") in run.output
    assert not re.search(r"^\[\d\]<stderr>:Traceback", run.output, re.M)
