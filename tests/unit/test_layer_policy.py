"""The suite's layer policy (tests/conftest.py): skips stay skips locally, fail under the CI flag."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"

MISSING_SLURM = """
import pytest

def test_needs_slurm():
    pytest.skip("Slurm is not installed here (missing: slurmctld)")
"""
STAND_IN = """
import pytest

@pytest.mark.ci_may_skip
@pytest.mark.skipif(True, reason="the root variant runs instead")
def test_stand_in():
    pass

def test_plain():
    assert 1 + 1 == 2
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """A miniature tests/ tree with a unit test, a stand-in that may skip, and a Slurm test that skips."""
    shutil.copy(CONFTEST, pytester.path / "conftest.py")
    for layer, body in (("unit", STAND_IN), ("slurm", MISSING_SLURM)):
        (pytester.path / layer).mkdir()
        (pytester.path / layer / f"test_{layer}.py").write_text(body)
    return pytester


def test_locally_a_missing_layer_is_a_skip_with_its_reason_and_the_counts_say_so(suite, monkeypatch) -> None:
    monkeypatch.delenv("HVDJOB_REQUIRE_ALL_LAYERS", raising=False)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = suite.runpytest_subprocess("-rs", "-p", "no:cacheprovider")
    assert result.ret == 0
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines([
        "*unit: 1 passed, 0 failed, 1 skipped",
        "*slurm: 0 passed, 0 failed, 1 skipped  (needs a local Slurm*",
        "2 test(s) skipped (reasons above); with HVDJOB_REQUIRE_ALL_LAYERS=1*each would be a failure",
        "SKIPPED*Slurm is not installed here (missing: slurmctld)",
    ])


def test_with_the_ci_flag_a_skipped_layer_fails_the_run_but_a_stand_in_may_skip(suite, monkeypatch) -> None:
    monkeypatch.setenv("HVDJOB_REQUIRE_ALL_LAYERS", "1")
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = suite.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, skipped=1, failed=1)
    result.stdout.fnmatch_lines([
        "*skipped, but HVDJOB_REQUIRE_ALL_LAYERS=1 requires the 'slurm' layer to run here: "
        "Slurm is not installed here*",
        "*slurm: 0 passed, 1 failed, 0 skipped*",
        "FAILED: layer 'slurm' ran but no test of it passed (HVDJOB_REQUIRE_ALL_LAYERS=1)",
    ])


def test_with_the_ci_flag_a_layer_of_only_deselected_or_skipped_tests_still_fails(suite, monkeypatch) -> None:
    """Even when every skip in a layer is an allowed one, a layer with no passing test is not 'green'."""
    (suite.path / "slurm" / "test_slurm.py").write_text(STAND_IN.replace("def test_plain():\n    assert 1 + 1 == 2\n",
                                                                          ""))
    monkeypatch.setenv("HVDJOB_REQUIRE_ALL_LAYERS", "1")
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = suite.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["FAILED: layer 'slurm' ran but no test of it passed*"])
