"""The printed tables: markdown for the README, aligned text for a terminal."""
from __future__ import annotations

import pytest

from hvdrun_cli.bench.analysis import analyze
from hvdrun_cli.bench.machine import cpu_model, describe_machine
from hvdrun_cli.bench.samples import RunSample
from hvdrun_cli.bench.stats import Spread
from hvdrun_cli.bench.table import Table, bench_table, fmt_spread


def test_spread_cell_shows_min_median_max() -> None:
    assert fmt_spread(Spread(1200.4, 1500.0, 1999.6, 3), 0) == "1,200 / 1,500 / 2,000"
    assert fmt_spread(Spread(0.912, 0.93, 0.951, 3)) == "0.91 / 0.93 / 0.95"
    assert fmt_spread(None) == "n/a"


def test_markdown_table_escapes_pipes_and_has_a_separator_row() -> None:
    table = Table(("a", "b|c"), (("1", "x|y"),))
    assert table.markdown().splitlines() == ["| a | b\\|c |", "|---|---|", "| 1 | x\\|y |"]


def test_text_table_aligns_columns() -> None:
    lines = Table(("np", "samples/s"), (("1", "10"), ("16", "1,000"))).text().splitlines()
    assert lines[0] == "np  samples/s"
    assert lines[1] == "--  ---------"
    assert lines[3] == "16  1,000"
    assert len({line.index(line.split()[1]) for line in lines}) == 1


def test_rows_must_fit_the_header() -> None:
    with pytest.raises(ValueError, match="has 1 cells"):
        Table(("a", "b"), (("1",),))


def test_bench_table_rows() -> None:
    samples = [RunSample(np, r, rate, 0.0, 2.0 + np, 1.0, 5.0, "/r") for np, r, rate in
               [(1, 0, 1000.0), (2, 0, 1600.0), (1, 1, 1000.0), (2, 1, 1800.0)]]
    table = bench_table(analyze(samples))
    assert table.headers[2] == "efficiency vs np=1"
    assert table.rows[1] == ("2", "1,600 / 1,700 / 1,800", "0.80 / 0.85 / 0.90", "4.00 / 4.00 / 4.00",
                             "3.00 / 3.00 / 3.00")


def test_cpu_model_from_cpuinfo() -> None:
    text = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nprocessor\t: 1\n"
    assert cpu_model(text) == "AMD EPYC 7B13"
    assert cpu_model("processor : 0\n") is None
    line = describe_machine({"cores": 2, "cpu_model": "X", "python": "3.11.7", "torch": "2.13.0", "horovod": "0.28.1"})
    assert line == "2 cores (X), Python 3.11.7, torch 2.13.0, Horovod 0.28.1"
