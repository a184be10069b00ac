"""What ``hvdjob bench`` asks the runner to launch, and the checks made before any run starts."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from hvdrun_cli.bench.runner import BenchConfig, check_spec, read_summary, run_all, spec_for_run
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


def test_each_run_launches_the_spec_with_its_np_fresh_checkpoints_and_the_users_sets(jobs: Path) -> None:
    config = _config(jobs, steps=50, set_options=("train.batch_size=64",))
    spec = spec_for_run(config, 2, "/out/runs/np2-r1")
    assert spec.resources.np == 2
    assert spec.train.batch_size == 64
    assert spec.train.max_steps == 50
    assert spec.checkpoint.dir == "/out/runs/np2-r1/checkpoints"
    assert spec.checkpoint.resume == "never"
    assert spec_for_run(_config(jobs), 1, "/x").train.max_steps is None


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
