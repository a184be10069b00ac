"""Plot data (error bars from the spreads) and the PNG that ``hvdjob bench`` writes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from hvdrun_cli.bench.analysis import analyze
from hvdrun_cli.bench.plot import plot_data
from hvdrun_cli.bench.report import BenchReport, write_report
from hvdrun_cli.bench.samples import RunSample

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _samples() -> list:
    rows = [(1, 0, 1000.0), (2, 0, 1500.0), (1, 1, 1100.0), (2, 1, 2090.0), (1, 2, 900.0), (2, 2, 1620.0)]
    return [RunSample(np, r, rate, 10.0, 13.0, 11.0, 5.0, f"/r/np{np}-r{r}") for np, r, rate in rows]


def test_error_bars_reach_from_min_to_max() -> None:
    data = plot_data(analyze(_samples()), "t")
    assert data.throughput.x == (1, 2)
    assert data.throughput.median == (1000.0, 1620.0)
    assert data.throughput.below == (100.0, 120.0)  # median - min
    assert data.throughput.above == (100.0, 470.0)  # max - median
    assert data.efficiency.median[0] == 1.0
    assert data.efficiency.median[1] == pytest.approx(0.9)  # 1620 / (2 * 900): repeat 2 is the median
    with pytest.raises(ValueError):
        plot_data([], "t")


def test_report_writes_json_and_png(tmp_path: Path) -> None:
    machine = {"cores": 2, "cpu_model": "X", "python": "3", "torch": "2", "horovod": "0.28.1"}
    report = BenchReport(job="synthetic", spec_path="job.yaml", repeats=3, steps=50, machine=machine,
                         samples=_samples(), load_before=0.1, load_after=0.3)
    written = write_report(report, str(tmp_path / "out"))
    data = json.loads(Path(written["json"]).read_text())
    assert [r["np"] for r in data["results"]] == [1, 2]
    assert data["results"][1]["samples_per_sec"] == {"min": 1500.0, "median": 1620.0, "max": 2090.0, "n": 3}
    assert len(data["runs"]) == 6 and data["runs"][0]["time_to_first_step_s"] == 3.0
    assert data["load_average_1min"] == {"before": 0.1, "after": 0.3}
    assert Path(written["png"]).read_bytes()[:8] == PNG_MAGIC
    assert "efficiency vs np=1" in report.text(markdown=True)
    assert write_report(report, str(tmp_path / "plain"), plot=False).keys() == {"json"}
