"""From run samples to per-np rows: efficiency paired by repeat, start-up split into its parts."""
from __future__ import annotations

from typing import Optional

import pytest

from hvdrun_cli.bench.analysis import analyze
from hvdrun_cli.bench.samples import RunSample, sample_from_summary
from hvdrun_cli.errors import LaunchError


def sample(np: int, repeat: int, rate: float, launch: float = 100.0, first: float = 103.0,
           start: Optional[float] = 101.0) -> RunSample:
    return RunSample(np=np, repeat=repeat, samples_per_sec=rate, launch_unix_time=launch, first_step_unix_time=first,
                     process_start_unix_time=start, wall_s=10.0 + repeat, run_dir=f"/r/np{np}-r{repeat}")


def test_efficiency_pairs_each_repeat_with_the_same_repeat_at_np1() -> None:
    samples = [sample(1, 0, 1000), sample(2, 0, 1800), sample(1, 1, 500), sample(2, 1, 950)]
    one, two = analyze(samples)
    assert (one.np, two.np) == (1, 2)
    assert one.efficiency.median == 1.0
    assert two.efficiency.min == pytest.approx(0.9)  # 1800 / (2 * 1000)
    assert two.efficiency.max == pytest.approx(0.95)  # 950 / (2 * 500)
    assert two.throughput.min == 950 and two.throughput.max == 1800
    assert two.base_np == 1


def test_without_np1_the_smallest_np_is_the_base() -> None:
    results = analyze([sample(4, 0, 3000), sample(2, 0, 2000)])
    assert [r.np for r in results] == [2, 4]
    assert results[1].base_np == 2
    assert results[1].efficiency.median == pytest.approx(0.75)


def test_start_up_is_split_into_launcher_and_rank_shares() -> None:
    (row,) = analyze([sample(2, 0, 10, launch=100.0, first=104.5, start=100.5)])
    assert row.time_to_first_step.median == pytest.approx(4.5)
    assert row.launch_to_rank_start.median == pytest.approx(0.5)
    assert row.rank_start_to_first_step.median == pytest.approx(4.0)
    (no_start,) = analyze([sample(2, 0, 10, start=None)])
    assert no_start.launch_to_rank_start is None
    assert no_start.to_dict()["rank_start_to_first_step_s"] is None


def test_no_samples_is_an_error() -> None:
    with pytest.raises(ValueError):
        analyze([])


def test_summary_fields_become_a_sample() -> None:
    summary = {"samples_per_sec": 1234.5, "first_step_unix_time": 105.0, "process_start_unix_time": 101.0}
    s = sample_from_summary(summary, np=2, repeat=1, launch_unix_time=100.0, wall_s=9.0, run_dir="/r")
    assert (s.np, s.repeat, s.samples_per_sec) == (2, 1, 1234.5)
    assert s.time_to_first_step_s == pytest.approx(5.0)
    assert s.to_dict()["launch_to_rank_start_s"] == pytest.approx(1.0)


@pytest.mark.parametrize("summary, message", [
    ({"first_step_unix_time": 1.0}, "samples_per_sec is missing"),
    ({"samples_per_sec": None, "first_step_unix_time": 1.0}, "samples_per_sec is missing"),
    ({"samples_per_sec": True, "first_step_unix_time": 1.0}, "samples_per_sec is missing"),
    ({"samples_per_sec": 0, "first_step_unix_time": 1.0}, "must be positive"),
    ({"samples_per_sec": 10.0}, "first_step_unix_time is missing"),
])
def test_a_summary_without_the_numbers_is_reported_with_its_path(summary: dict, message: str) -> None:
    with pytest.raises(LaunchError, match=message) as info:
        sample_from_summary(summary, np=1, repeat=0, launch_unix_time=0.0, wall_s=1.0, run_dir="/r",
                            where="/r/summary.json")
    assert str(info.value).startswith("/r/summary.json: ")
