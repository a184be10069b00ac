"""Reading Horovod's autotune log into the best parameters, and the bench flags that ask for it."""
from __future__ import annotations

from pathlib import Path

from hvdrun_cli.bench.autotune import best_of_runs, parse_autotune_log
from hvdrun_cli.bench.runner import BenchConfig, run_overrides

# As horovod/common/parameter_manager.cc writes it (note the ", " after torus_allreduce).
LOG = """hierarchical_allreduce,hierarchical_allgather,torus_allreduce,cache_enabled,cycle_time_ms,tensor_fusion_threshold,score
0,0,0, 1,5,64,1.2e+08
0,0,0, 1,2.5,16,3.4e+08
0,0,0, 0,1,128,2.0e+08
"""


def test_the_best_sample_is_the_highest_score() -> None:
    best = parse_autotune_log(LOG)
    assert best is not None
    assert (best.cycle_time_ms, best.fusion_threshold_mb, best.cache_enabled, best.samples) == (2.5, 16, True, 3)
    assert best.spec_settings() == ["horovod.cycle_time_ms=2.5", "horovod.fusion_threshold_mb=16",
                                    "horovod.cache_capacity=1024", "horovod.hierarchical_allreduce=false"]
    assert "cycle_time_ms 2.5" in best.describe()


def test_an_empty_or_header_only_log_has_no_best() -> None:
    assert parse_autotune_log("") is None
    assert parse_autotune_log(LOG.splitlines()[0] + "\n") is None


def test_best_over_runs_skips_missing_logs(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "autotune.csv").write_text(LOG)
    best = best_of_runs([str(tmp_path / "a"), str(tmp_path / "missing")])
    assert best is not None and best.score == 3.4e8


def test_autotune_runs_log_into_their_own_run_directory() -> None:
    config = BenchConfig(spec_path="job.yaml", nps=(2,), out_dir="/o", autotune=True)
    options = run_overrides(config, "/o/runs/np2-r1")
    assert "horovod.autotune=true" in options
    assert 'horovod.autotune_log="/o/runs/np2-r1/autotune.csv"' in options
