"""Suite-wide rules: which layer each test belongs to, and a CI that cannot go green on skipped layers.

Locally a test whose prerequisite is missing (no Slurm, no root for namespace hosts, no mpirun...)
is skipped with its reason. With ``HVDJOB_REQUIRE_ALL_LAYERS=1`` (set by ``.ci/run``) every such
skip is reported as a failure instead, and a layer that was collected but had no test pass fails the
session, so "all green" means every real-system layer really ran. Tests marked ``ci_may_skip`` are
the exception: they stand in for another test on machines where that one cannot run (their skip in
CI is expected). The end of every run prints how many tests ran per layer.
"""
from __future__ import annotations

import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

REQUIRE_ENV = "HVDJOB_REQUIRE_ALL_LAYERS"
TESTS = Path(__file__).resolve().parent

# (layer, real system it needs); the first rule that matches a test names its layer.
UNIT, INTEGRATION, RELIABILITY = "unit", "integration", "reliability"
REAL_SYSTEM_LAYERS = {
    "slurm": "a local Slurm (slurmctld, slurmd, munge)",
    "namespace hosts": "root, ip netns and sshd",
    "mpirun": "Open MPI's mpirun",
    "elastic": "horovodrun elastic with a third loopback name",
    "scontrol oracle": "Slurm's scontrol",
}
LAYER_ORDER = [UNIT, "scontrol oracle", INTEGRATION, "mpirun", RELIABILITY, "elastic", "slurm", "namespace hosts"]


def require_all_layers() -> bool:
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0")


def layer_of(item: pytest.Item) -> str:
    path = Path(str(item.fspath)).resolve()
    parts = path.relative_to(TESTS).parts if TESTS in path.parents else path.parts
    top = parts[0] if parts else ""
    if top == "slurm" or item.get_closest_marker("slurm"):
        return "slurm"
    if top == "multihost" or item.get_closest_marker("multihost"):
        return "namespace hosts"
    if path.name == "test_nodelist_oracle.py":
        return "scontrol oracle"
    if path.name == "test_elastic.py":
        return "elastic"
    if item.get_closest_marker("mpirun"):
        return "mpirun"
    if top == "reliability":
        return RELIABILITY
    if top == "integration":
        return INTEGRATION
    return UNIT


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "mpirun: needs Open MPI's mpirun (a real-system layer)")
    config.addinivalue_line("markers", "ci_may_skip(reason): a stand-in test whose skip is expected in CI")
    config.pluginmanager.register(LayerReport(), "hvdjob-layers")


class LayerReport:
    """Counts outcomes per layer; with the require flag, skips fail and so does a layer with no pass."""

    def __init__(self) -> None:
        self.layers: Dict[str, str] = {}  # nodeid -> layer, for the tests that will run
        self.outcomes: Dict[str, str] = {}  # nodeid -> passed | failed | skipped
        self.empty_layers: List[str] = []

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """After -k/-m deselection: the tests that will run."""
        for item in session.items:
            self.layers[item.nodeid] = layer_of(item)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):  # type: ignore[no-untyped-def]
        outcome = yield
        report = outcome.get_result()
        if not (report.skipped and require_all_layers()) or hasattr(report, "wasxfail"):
            return
        if item.get_closest_marker("ci_may_skip"):
            return
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason[len("Skipped: "):] if reason.startswith("Skipped: ") else reason
        report.outcome = "failed"
        report.longrepr = (f"skipped, but {REQUIRE_ENV}=1 requires the {layer_of(item)!r} layer to run here: "
                           f"{reason}")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        previous = self.outcomes.get(report.nodeid)
        if report.failed:
            self.outcomes[report.nodeid] = "failed"
        elif report.skipped and previous != "failed":
            self.outcomes[report.nodeid] = "skipped"
        elif report.when == "call" and report.passed and previous is None:
            self.outcomes[report.nodeid] = "passed"

    def counts(self) -> Dict[str, Counter]:
        per_layer: Dict[str, Counter] = defaultdict(Counter)
        for nodeid, layer in self.layers.items():
            per_layer[layer][self.outcomes.get(nodeid, "not run")] += 1
        return per_layer

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if not require_all_layers() or session.config.option.collectonly:
            return
        self.empty_layers = [layer for layer, c in self.counts().items() if c["passed"] == 0]
        if self.empty_layers and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter, exitstatus: int,  # type: ignore[no-untyped-def]
                                config: pytest.Config) -> None:
        per_layer = self.counts()
        if not per_layer or config.option.collectonly:
            return
        terminalreporter.section("tests run per layer")
        rows: List[Tuple[str, Counter]] = sorted(per_layer.items(), key=lambda kv: (
            LAYER_ORDER.index(kv[0]) if kv[0] in LAYER_ORDER else len(LAYER_ORDER), kv[0]))
        for layer, c in rows:
            needs = f"  (needs {REAL_SYSTEM_LAYERS[layer]})" if layer in REAL_SYSTEM_LAYERS else ""
            extra = f", {c['not run']} not run" if c["not run"] else ""
            terminalreporter.write_line(f"{layer:>16}: {c['passed']} passed, {c['failed']} failed, "
                                        f"{c['skipped']} skipped{extra}{needs}")
        skipped = sum(c["skipped"] for c in per_layer.values())
        if require_all_layers():
            for layer in self.empty_layers:
                terminalreporter.write_line(f"FAILED: layer {layer!r} ran but no test of it passed "
                                            f"({REQUIRE_ENV}=1)", red=True)
        elif skipped:
            terminalreporter.write_line(f"{skipped} test(s) skipped (reasons above); with {REQUIRE_ENV}=1, as in "
                                        ".ci/run, each would be a failure", yellow=True)
