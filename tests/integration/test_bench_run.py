"""``hvdjob bench`` end to end: every run goes through ``hvdjob run`` with real Horovod ranks."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.hvdjob_process import read_json, run_hvdjob, write_job

pytestmark = pytest.mark.integration
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_bench_measures_each_np_and_writes_json_and_plot(tmp_path: Path) -> None:
    job = write_job(tmp_path, "job.yaml", """
        name: tiny
        framework: torch
        train:
          data: synthetic
          data_args: {samples: 512, val_samples: 64, features: 16}
          batch_size: 16
          epochs: 50
          validate: false
        horovod: {threads_per_rank: 1}
        """)
    out = tmp_path / "bench"
    finished = run_hvdjob("bench", str(job), "--np", "1,2", "--repeats", "1", "--steps", "20", "--out", str(out),
                          cwd=tmp_path)
    assert finished.returncode == 0, finished.output
    data = read_json(out / "bench.json")
    assert [r["np"] for r in data["results"]] == [1, 2]
    assert data["results"][0]["scaling_efficiency"]["median"] == 1.0
    for run in data["runs"]:
        assert run["samples_per_sec"] > 0
        assert 0 < run["time_to_first_step_s"] < run["wall_s"]
        summary = json.loads((Path(run["run_dir"]) / "summary.json").read_text())
        assert summary["steps"] == 20 and summary["world_size"] == run["np"]
    assert (out / "runs" / "np2-r1" / "rank.1.log").exists()  # a real hvdjob run directory
    assert (out / "bench.png").read_bytes()[:8] == PNG_MAGIC
    assert "efficiency vs np=1" in finished.stdout


def test_a_run_without_summary_is_named(tmp_path: Path) -> None:
    (tmp_path / "s.py").write_text("import horovod.torch as hvd\nhvd.init()\n")
    job = write_job(tmp_path, "job.yaml", "framework: torch\nscript: s.py\nresources: {np: 2}\n")
    finished = run_hvdjob("bench", str(job), "--np", "2", "--repeats", "1", "--out", str(tmp_path / "b"), cwd=tmp_path)
    assert finished.returncode == 1
    assert "runs/np2-r1/summary.json was not written" in finished.stderr
