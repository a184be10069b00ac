"""README promises about ``hvdjob run`` checked end to end, with real ranks:
the ``latest`` link, a re-run of a finished job, ``checkpoint.resume: never``, ``--max-restarts``,
a second Ctrl-C, the final sweep by ``HVDJOB_RUN_ID`` and ``keras_setup()``."""
from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import pytest

from tests.hvdjob_process import processes_of_run, run_hvdjob, write_job
from tests.reliability.support import JobRunner

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def jobs(tmp_path: Path):
    runner = JobRunner(tmp_path)
    yield runner
    runner.cleanup()


def _script_job(directory: Path, script: str, body: str, name: str = "claims", extra: str = "") -> Path:
    (directory / script).write_text(body)
    return write_job(directory, "job.yaml", f"""
        name: {name}
        framework: torch
        script: {script}
        launcher: gloo
        resources: {{np: 2}}
        {extra}
        """)


def test_rerun_of_a_finished_job_ends_at_once_and_resume_never_trains_from_scratch(tmp_path: Path) -> None:
    job = REPO / "jobs" / "digits-torch.yaml"
    short = ("--set", "train.max_steps=12", "--set", "train.log_interval=4", "--set", "train.validate=false")
    first = run_hvdjob("run", str(job), *short, cwd=tmp_path)
    assert first.returncode == 0, first.output[-3000:]
    again = run_hvdjob("run", str(job), *short, cwd=tmp_path)
    assert again.returncode == 0, again.output[-3000:]
    summary = json.loads((again.run_dir() / "summary.json").read_text())
    assert (summary["resumed_from_step"], summary["steps"]) == (12, 12)
    assert not re.search(r"^\[0\] epoch \d+/\d+ step \d+/", again.stdout, re.M), "the finished job trained again"
    records = (again.run_dir() / "metrics.jsonl")
    assert not records.exists() or not [r for r in records.read_text().splitlines() if '"train"' in r]

    fresh = run_hvdjob("run", str(job), *short, "--set", "checkpoint.resume=never", cwd=tmp_path)
    assert fresh.returncode == 0, fresh.output[-3000:]
    summary = json.loads((fresh.run_dir() / "summary.json").read_text())
    assert (summary["resumed_from_step"], summary["steps"]) == (None, 12)
    assert re.search(r"^\[0\] epoch 1/10 step 4/", fresh.stdout, re.M), "resume: never did not start at step 0"

    # runs/<name>/latest points at the newest run directory.
    latest = tmp_path / "runs" / "digits-torch" / "latest"
    assert latest.is_symlink() and latest.resolve() == fresh.run_dir().resolve()


FAILS_ON_FIRST_ATTEMPT = """\
import os, sys
import horovod.torch as hvd
import torch
hvd.init()
hvd.allreduce(torch.ones(1))
attempt = int(os.environ["HVDJOB_ATTEMPT"])
print(f"rank {hvd.rank()} attempt {attempt}", flush=True)
if attempt == 0 and hvd.rank() == 1:
    sys.exit(3)
"""


def test_max_restarts_relaunches_after_a_failure_and_without_it_the_failure_stands(tmp_path: Path) -> None:
    job = _script_job(tmp_path, "flaky.py", FAILS_ON_FIRST_ATTEMPT)
    restarted = run_hvdjob("run", str(job), "--max-restarts", "1", cwd=tmp_path)
    assert restarted.returncode == 0, restarted.output[-3000:]
    assert "attempt 2 of 2: relaunching 2 ranks" in restarted.stderr + restarted.stdout
    assert re.search(r"^\[1\] rank 1 attempt 1$", restarted.stdout, re.M)
    once = run_hvdjob("run", str(job), cwd=tmp_path)
    assert once.returncode == 3, once.output[-3000:]
    assert "relaunching" not in once.output


STUBBORN = """\
import signal, time
import horovod.torch as hvd
import torch
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a rank that cannot stop gracefully
hvd.init()
print(f"rank {hvd.rank()} ready", flush=True)
while True:
    time.sleep(0.1)
"""


def test_a_second_ctrl_c_kills_at_once(jobs: JobRunner) -> None:
    job = jobs.start("run", str(_script_job(jobs.workdir, "stubborn.py", STUBBORN)))
    job.find_run_dir()
    job.wait_for(r"^\[0\] rank 0 ready$")
    job.wait_for(r"^\[1\] rank 1 ready$")
    job.proc.send_signal(signal.SIGINT)
    time.sleep(2.0)
    assert job.proc.poll() is None, "the first Ctrl-C should wait for the ranks to checkpoint"
    second_at = time.monotonic()
    job.proc.send_signal(signal.SIGINT)
    code = job.wait(30)
    took = time.monotonic() - second_at
    assert code == 128 + signal.SIGINT, job.output[-3000:]
    assert took < 3.0, f"{took:.1f} s from the second Ctrl-C to the end (the graceful stop waits 30 s)"
    assert processes_of_run(job.run_id) == []


ESCAPES = """\
import os, subprocess, sys
import horovod.torch as hvd
hvd.init()
if hvd.rank() == 0:
    # A child in a session of its own: neither the rank's process group nor its launcher's reach it.
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f"escaped child {child.pid}", flush=True)
"""


def test_final_sweep_ends_a_process_that_left_the_jobs_process_groups(tmp_path: Path) -> None:
    job = _script_job(tmp_path, "escape.py", ESCAPES)
    finished = run_hvdjob("run", str(job), cwd=tmp_path, timeout=120)
    assert finished.returncode == 0, finished.output[-3000:]
    pid = int(re.search(r"escaped child (\d+)", finished.stdout).group(1))
    try:
        assert processes_of_run(finished.run_dir().name) == []
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


KERAS_SETUP = """\
import hashlib
import numpy as np
import tensorflow as tf
from hvdrun_cli.adapters import keras_setup, scaled_lr

keras = tf.keras
hvd, optimizer, callbacks = keras_setup(keras.optimizers.SGD(scaled_lr(0.05, "linear", 2)),
                                        warmup_epochs=1, steps_per_epoch=8)
tf.random.set_seed(100 + hvd.rank())  # different initial weights per rank: the broadcast must fix it
model = keras.Sequential([keras.layers.Input(shape=(4,)), keras.layers.Dense(3)])
model.compile(optimizer=optimizer, loss="mse")
rng = np.random.default_rng(hvd.rank())  # each rank its own data
model.fit(rng.normal(size=(64, 4)), rng.normal(size=(64, 3)), batch_size=8, epochs=2, verbose=0,
          callbacks=callbacks)
digest = hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights())).hexdigest()[:16]
print(f"rank {hvd.rank()} of {hvd.size()} weights {digest}", flush=True)
"""


def test_keras_setup_gives_a_script_identical_weights_on_every_rank(tmp_path: Path) -> None:
    (tmp_path / "keras_helpers.py").write_text(KERAS_SETUP)
    job = write_job(tmp_path, "job.yaml", """
        name: keras-setup
        framework: tensorflow
        script: keras_helpers.py
        launcher: gloo
        resources: {np: 2}
        """)
    finished = run_hvdjob("run", str(job), cwd=tmp_path)
    assert finished.returncode == 0, finished.output[-3000:]
    digests = dict(re.findall(r"^\[\d\] rank (\d) of 2 weights ([0-9a-f]+)$", finished.stdout, re.M))
    assert sorted(digests) == ["0", "1"], finished.output[-3000:]
    assert digests["0"] == digests["1"], "keras_setup did not keep the ranks' weights identical"
