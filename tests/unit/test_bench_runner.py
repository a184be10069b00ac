"""What ``hvdjob bench`` asks ``hvdjob run`` to do, and the checks made before any run starts."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from hvdrun_cli.bench.runner import BenchConfig, check_spec, read_summary, run_all, run_argv
from hvdrun_cli.bench.samples import RunSample
from hvdrun_cli.errors import LaunchError, SpecError, UserInputError


def _config(tmp_path: Path, spec: str = "job.yaml", **kw) -> BenchConfig:
    base = dict(spec_path=str(tmp_path / spec), nps=(1, 2), out_dir=str(tmp_path / "out"), repeats=2)
    base.update(kw)
    return BenchConfig(**base)


@pytest.fixture
def jobs(tmp_path: Path) -> Path:
    (tmp_path / "job.yaml").write_text("framework: torch\ntrain: {data: synthetic}\n")
    (tmp_path / "train.py").write_text("print('hi')\n")
    (tmp_path / "script.yaml").write_text("framework: torch\nscript: train.py\n")
    return tmp_path


def test_each_run_is_hvdjob_run_with_its_own_dir_np_and_fresh_checkpoints(jobs: Path) -> None:
    config = _config(jobs, steps=50, set_options=("train.batch_size=64",))
    argv = run_argv(config, 2, "/out/runs/np2-r1")
    assert argv == [
        sys.executable, "-m", "hvdrun_cli", "run", str(jobs / "job.yaml"), "--run-dir", "/out/runs/np2-r1",
        "--np", "2", "-q",
        "--set", "train.batch_size=64",
        "--set", 'checkpoint.dir="/out/runs/np2-r1/checkpoints"',
        "--set", "checkpoint.resume=never",
        "--set", "train.max_steps=50",
    ]
    assert "train.max_steps" not in " ".join(run_argv(_config(jobs), 1, "/x"))


def test_overrides_are_valid_spec_values(jobs: Path) -> None:
    spec = check_spec(_config(jobs, steps=50, out_dir=str(jobs / "odd: dir #1")))
    assert spec.train.max_steps == 50
    assert spec.checkpoint.resume == "never"
    assert spec.checkpoint.dir.endswith("odd: dir #1/runs/np2-r1/checkpoints")
    assert spec.resources.np == 2


def test_steps_on_a_script_job_is_refused(jobs: Path) -> None:
    with pytest.raises(UserInputError) as info:
        check_spec(_config(jobs, spec="script.yaml", steps=10))
    assert str(info.value.problems[0]).startswith(f"{jobs / 'script.yaml'}: --steps: only applies to managed")
    assert check_spec(_config(jobs, spec="script.yaml")).script == str(jobs / "train.py")


def test_bad_spec_and_bad_set_fail_before_running(jobs: Path) -> None:
    with pytest.raises(SpecError, match="train.lr"):
        check_spec(_config(jobs, set_options=("train.lr=fast",)))
    (jobs / "small.yaml").write_text("framework: torch\ntrain: {}\nresources: {hosts: [localhost:1]}\n")
    with pytest.raises(UserInputError, match="resources.np"):
        check_spec(_config(jobs, spec="small.yaml"))


def test_runs_happen_in_interleaved_order(jobs: Path) -> None:
    seen = []

    def fake_run(config: BenchConfig, np: int, repeat: int) -> RunSample:
        seen.append((repeat, np))
        return RunSample(np, repeat, 100.0 * np, 0.0, 1.0, 0.5, 2.0, "/r")

    arrived = []
    samples = run_all(_config(jobs), on_sample=arrived.append, run=fake_run)
    assert seen == [(0, 1), (0, 2), (1, 2), (1, 1)]
    assert arrived == samples and len(samples) == 4


def test_summary_must_exist_and_be_an_object(tmp_path: Path) -> None:
    with pytest.raises(LaunchError, match="summary.json was not written; the bench needs managed training"):
        read_summary(str(tmp_path))
    (tmp_path / "summary.json").write_text("[1, 2]")
    with pytest.raises(LaunchError, match="not a JSON object"):
        read_summary(str(tmp_path))
    (tmp_path / "summary.json").write_text(json.dumps({"samples_per_sec": 5.0}))
    assert read_summary(str(tmp_path)) == {"samples_per_sec": 5.0}
