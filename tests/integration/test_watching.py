"""Watching a job, for real: the progress bar on a pseudo-terminal and its plain-line fallback,
TensorBoard events read back with tensorboard's own reader, ``hvdjob report`` and ``hvdjob runs``
on a finished managed run, and a failing script's traceback starting at the user's code."""
from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Tuple

import pytest

from tests.hvdjob_process import REPO, hvdjob_argv, run_hvdjob, write_job

pytestmark = pytest.mark.integration
SCRIPTS = Path(__file__).resolve().parent / "scripts"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _script_job(tmp_path: Path, steps: int = 20) -> Path:
    return write_job(tmp_path, "job.yaml", f"""\
        framework: torch
        name: watched
        script: {SCRIPTS / "progress_script.py"}
        args: ["{steps}"]
        resources: {{np: 2}}
        """)


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def _run_on_pty(argv: List[str], cwd: Path, timeout: float = 120) -> Tuple[int, List[Tuple[float, str]]]:
    """Run ``argv`` with a pseudo-terminal as stdin/stdout/stderr; (exit code, [(time, chunk)])."""
    master, slave = pty.openpty()
    os.set_blocking(master, False)
    env = {**_env(), "TERM": "xterm-256color", "COLUMNS": "140", "LINES": "40"}
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave, close_fds=True,
                            start_new_session=True)
    os.close(slave)
    chunks: List[Tuple[float, str]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every writer closed the terminal
                    break
                if not data:
                    break
                chunks.append((time.monotonic(), data.decode("utf-8", errors="replace")))
            elif proc.poll() is not None:
                break
        return proc.wait(timeout=30), chunks
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
        os.close(master)


def test_progress_bar_is_drawn_live_on_a_terminal(tmp_path: Path) -> None:
    job = _script_job(tmp_path)
    code, chunks = _run_on_pty(hvdjob_argv("run", str(job)), tmp_path)
    text = "".join(c for _, c in chunks)
    assert code == 0, text[-3000:]
    ended = next(t for t, c in chunks if "finished in" in c)
    bar = re.compile(r"━+.*step (\d+)/20 \((\d+)%\) .*samples/s loss [\d.]+ (\d)/2 ranks alive")
    live = [(t, bar.search(ANSI.sub("", c))) for t, c in chunks]
    partial = [(t, m) for t, m in live if m and int(m.group(1)) < 20]
    assert partial, text[-3000:]
    first_t, first = partial[0]
    assert ended - first_t > 1.0  # drawn while the ranks ran, not at the end
    assert first.group(3) == "2"
    assert "ETA" in ANSI.sub("", text)
    final = [m for _, m in live if m][-1]
    assert (final.group(1), final.group(2)) == ("20", "100")
    plain = ANSI.sub("", text)
    assert "[0] rank 0 did 5 steps" in plain  # rank output scrolls above the bar
    assert "hvdjob: at step" not in plain and "hvdjob: progress step" not in plain  # marks hidden, no plain lines


def test_without_a_terminal_progress_is_a_plain_line_every_few_seconds(tmp_path: Path) -> None:
    job = _script_job(tmp_path, steps=30)
    started = time.monotonic()
    result = run_hvdjob("run", str(job), "--progress-every", "1", cwd=tmp_path, env={"PYTHONPATH": _env()["PYTHONPATH"]})
    took = time.monotonic() - started
    assert result.returncode == 0, result.output[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("hvdjob: progress ")]
    assert ANSI.search(result.output) is None
    # A line before rank 0's first mark knows the step (from any rank) but not yet the total.
    steps = [int(re.search(r"step (\d+)", line).group(1)) for line in lines]
    assert steps == sorted(steps) and steps[-1] == 30 and any(s < 30 for s in steps)
    assert lines[-1].startswith("hvdjob: progress step 30/30 (100%)")
    assert len(lines) <= took / 1.0 + 2  # one per interval at most (and the final one)
    with_total = [line for line in lines if "/30 " in line]
    assert re.search(r"hvdjob: progress step \d+/30 \(\d+%\) .*samples/s loss [\d.]+ 2/2 ranks alive", with_total[0])


def test_a_failing_script_shows_a_traceback_that_starts_at_the_users_code(tmp_path: Path) -> None:
    script = tmp_path / "broken.py"
    script.write_text("def build():\n    return {}['model']\n\nbuild()\n")
    job = write_job(tmp_path, "job.yaml", f"framework: torch\nname: broken\nscript: {script}\nresources: {{np: 1}}\n")
    result = run_hvdjob("run", str(job), cwd=tmp_path, env={"PYTHONPATH": _env()["PYTHONPATH"]})
    assert result.returncode == 1, result.output[-3000:]
    shown = [line for line in result.stdout.splitlines() if line.startswith("[0] ")]
    start = shown.index("[0] Traceback (most recent call last):")
    assert shown[start + 1].startswith(f'[0]   File "{script}", line 4, in <module>')
    assert "[0] KeyError: 'model'" in shown
    assert "runpy" not in result.output and "script_mode.py" not in result.output
    log = (result.run_dir() / "rank.0.log").read_text()
    assert "script_mode.py" in log and "KeyError: 'model'" in log


def _scalars(logdir: Path) -> dict:
    """Every scalar series in ``logdir``, read with tensorboard's own EventAccumulator.

    ``torch.utils.tensorboard`` writes classic scalar values; ``tf.summary.scalar`` (TF 2) writes
    scalar tensors, which TensorBoard shows as scalars too.
    """
    sys.modules.setdefault("tensorboard.compat.notf", type(sys)("tensorboard.compat.notf"))  # no TF import
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    acc = EventAccumulator(str(logdir))
    acc.Reload()
    tags = acc.Tags()
    series = {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in tags["scalars"]}
    for tag in tags["tensors"]:
        series[tag] = [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in acc.Tensors(tag)]
    return series


MANAGED = """\
    framework: {framework}
    name: watch-{framework}
    resources: {{np: 2}}
    train:
      model: mlp
      model_args: {{hidden: [32]}}
      data: digits
      epochs: 2
      batch_size: 32
      log_interval: 10
    checkpoint: {{interval_steps: 1000}}
    """


@pytest.mark.parametrize("framework", ["torch", "tensorflow"])
def test_managed_run_leaves_tensorboard_events_timing_a_report_and_a_runs_row(tmp_path: Path, framework: str) -> None:
    job = write_job(tmp_path, "job.yaml", MANAGED.format(framework=framework))
    result = run_hvdjob("run", str(job), "--progress-every", "2", cwd=tmp_path,
                        env={"PYTHONPATH": _env()["PYTHONPATH"]}, timeout=400)
    assert result.returncode == 0, result.output[-3000:]
    run_dir = result.run_dir()
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [m for m in metrics if m["kind"] == "train"]
    val = [m for m in metrics if m["kind"] == "validation"]

    scalars = _scalars(run_dir / "tensorboard")
    assert {"train/loss", "train/accuracy", "train/lr", "train/samples_per_sec",
            "validation/loss", "validation/accuracy"} <= set(scalars)
    assert [s for s, _ in scalars["train/loss"]] == [m["step"] for m in train]
    assert [v for _, v in scalars["train/loss"]] == pytest.approx([m["loss"] for m in train], rel=1e-4)
    assert [v for _, v in scalars["validation/accuracy"]] == pytest.approx([m["val_accuracy"] for m in val], rel=1e-4)

    for rank in (0, 1):
        windows = [json.loads(line) for line in (run_dir / "timing" / f"rank.{rank}.jsonl").read_text().splitlines()]
        assert [w["step"] for w in windows] == [m["step"] for m in train]
        assert all(w["step_time_s"] > 0 for w in windows)

    assert re.search(r"^hvdjob: progress step \d+/\d+ ", result.stdout, re.M)

    report = subprocess.run(hvdjob_argv("report", str(run_dir)), cwd=tmp_path, env=_env(), capture_output=True,
                            text=True, timeout=120)
    assert report.returncode == 0, report.stderr
    assert (run_dir / "report.png").read_bytes()[:4] == b"\x89PNG"
    numbers = json.loads(subprocess.run(hvdjob_argv("report", str(run_dir), "--json"), cwd=tmp_path, env=_env(),
                                        capture_output=True, text=True, timeout=60).stdout)
    assert [r["rank"] for r in numbers["ranks"]] == [0, 1]
    assert numbers["best_val_accuracy"] == max(m["val_accuracy"] for m in val)

    runs = subprocess.run(hvdjob_argv("runs", "--json"), cwd=tmp_path, env=_env(), capture_output=True, text=True,
                          timeout=60)
    rows = json.loads(runs.stdout)
    assert [(r["run_id"], r["status"], r["exit_code"]) for r in rows] == [(run_dir.name, "finished", 0)]
    assert rows[0]["steps"] >= train[-1]["step"] and rows[0]["best_val_accuracy"] == numbers["best_val_accuracy"]


def test_tensorboard_false_turns_the_event_files_off(tmp_path: Path) -> None:
    job = write_job(tmp_path, "job.yaml", MANAGED.format(framework="torch"))
    result = run_hvdjob("run", str(job), "--set", "train.tensorboard=false", "--set", "train.max_steps=10",
                        cwd=tmp_path, env={"PYTHONPATH": _env()["PYTHONPATH"]}, timeout=300)
    assert result.returncode == 0, result.output[-3000:]
    run_dir = result.run_dir()
    assert (run_dir / "metrics.jsonl").exists() and not (run_dir / "tensorboard").exists()
