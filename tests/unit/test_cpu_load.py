"""How busy other work keeps the job's CPUs: the /proc/stat reading behind ``binding: auto``."""
import os
import subprocess
import sys

import pytest

from hvdrun_cli.launch.cpu_load import busy_share, measure_busy_share, parse_cpu_times
from hvdrun_cli.launch.placement import HostCpus, place

BEFORE = """cpu  2695863 648925 1098034 1054507 8850 0 29809 24580 0 0
cpu0 1000 0 500 2000 10 0 5 0 0 0
cpu1 1000 0 500 2000 10 0 5 0 0 0
intr 123 4 5
"""
# cpu0 fully busy (4 ticks user, 1 system), cpu1 idle (5 idle ticks) over the window.
AFTER = """cpu  2695869 648925 1098035 1054512 8850 0 29809 24580 0 0
cpu0 1004 0 501 2000 10 0 5 0 0 0
cpu1 1000 0 500 2005 10 0 5 0 0 0
"""


def test_per_cpu_counters_are_read_and_the_total_line_is_not() -> None:
    times = parse_cpu_times(BEFORE)
    assert sorted(times) == [0, 1]
    assert times[0][:4] == [1000, 0, 500, 2000]


def test_busy_share_counts_only_the_jobs_cpus() -> None:
    before, after = parse_cpu_times(BEFORE), parse_cpu_times(AFTER)
    assert busy_share(before, after, [0]) == 1.0
    assert busy_share(before, after, [1]) == 0.0
    assert busy_share(before, after, [0, 1]) == 0.5
    assert busy_share(before, after, [7]) is None  # not a CPU of this machine: no signal, not "idle"


def test_a_missing_proc_stat_gives_no_signal(tmp_path) -> None:
    assert measure_busy_share([0], 0.0, path=str(tmp_path / "absent")) is None


def test_a_busy_process_on_a_cpu_is_seen_and_auto_then_leaves_ranks_unbound() -> None:
    cpu = sorted(os.sched_getaffinity(0))[0]
    spin = subprocess.Popen([sys.executable, "-c",
                             f"import os; os.sched_setaffinity(0, {{{cpu}}})\nwhile True: pass"])
    try:
        share = None
        for _ in range(5):  # the child needs a moment to start spinning
            share = measure_busy_share([cpu], 0.2)
            if share is not None and share >= 0.9:
                break
        assert share is not None and share >= 0.9
        placed = place(HostCpus((cpu,)), 1, "auto", busy_share=share)
        assert not any(b.bound for b in placed.bindings) and "busy just before the job" in placed.warning
    finally:
        spin.kill()
        spin.wait()


@pytest.mark.parametrize("share, bound", [(0.0, True), (0.49, True), (0.5, False), (1.0, False)])
def test_auto_binds_below_half_busy_and_core_always(share: float, bound: bool) -> None:
    assert any(b.bound for b in place(HostCpus((0, 1)), 2, "auto", busy_share=share).bindings) is bound
    assert all(b.bound for b in place(HostCpus((0, 1)), 2, "core", busy_share=share).bindings)
