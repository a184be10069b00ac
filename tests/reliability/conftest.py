"""Fault-injection fixtures: real ``hvdjob run`` processes, real signals, real filesystems.

Training uses a tiny MLP whose forward pass sleeps a little (``slow_model.py``), so a run lasts long
enough to be hit mid-training while its numerics are untouched. Timings worth reporting are
collected with ``measure`` and printed at the end of the session.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable, Iterator, List, Tuple

import pytest

from tests.reliability.support import HERE, JobRunner

_MEASUREMENTS: List[Tuple[str, str]] = []


@pytest.fixture
def jobs(tmp_path: Path) -> Iterator[JobRunner]:
    shutil.copy(HERE / "slow_model.py", tmp_path / "slow_model.py")
    runner = JobRunner(tmp_path)
    yield runner
    runner.cleanup()


@pytest.fixture
def measure() -> Callable[[str, str], None]:
    """``measure(what, value)``: keep a number for the session's closing table."""
    return lambda what, value: _MEASUREMENTS.append((what, value))


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if _MEASUREMENTS:
        terminalreporter.section("reliability measurements")
        for what, value in _MEASUREMENTS:
            terminalreporter.write_line(f"{what}: {value}")