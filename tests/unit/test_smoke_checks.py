"""The smoke checks' rules: loss trend, finite losses, launch outcomes, parameters, resume."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from hvdrun_cli.smoke import checks
from hvdrun_cli.smoke.evidence import read_losses
from hvdrun_cli.smoke.model import FAIL, PASS, SKIP, LaunchOutcome, LossPoint


def _points(values, name="loss"):
    return [LossPoint(step=2 * (i + 1), name=name, value=v, source=f"m:{i + 1}") for i, v in enumerate(values)]


# ---- loss trend ---------------------------------------------------------------------------------


def test_trend_compares_means_of_first_and_last_third():
    trend = checks.loss_trend([3.0, 2.0, 9.0, 9.0, 1.0, 0.5])
    assert (trend.window, trend.first_mean, trend.last_mean) == (2, 2.5, 0.75)
    assert trend.decreasing


def test_trend_ignores_the_middle_third_and_one_noisy_record():
    # A spike in the middle (e.g. right after a resume) and one noisy late record do not decide it.
    values = [2.3, 2.2, 2.1, 5.0, 1.9, 1.8, 1.2, 2.25, 1.0]
    trend = checks.loss_trend(values)
    assert trend.window == 3
    assert trend.last_mean == pytest.approx((1.2 + 2.25 + 1.0) / 3)
    assert trend.decreasing


def test_trend_not_decreasing_when_flat_or_rising():
    assert not checks.loss_trend([1.0, 1.0, 1.0]).decreasing
    assert not checks.loss_trend([1.0, 1.5, 2.0, 2.5]).decreasing


def test_trend_needs_three_values():
    with pytest.raises(ValueError):
        checks.loss_trend([2.0, 1.0])


def test_loss_decreases_verdicts():
    assert checks.check_loss_decreases(_points([2.3, 2.0, 1.5, 1.0])).status == PASS
    rising = checks.check_loss_decreases(_points([1.0, 1.2, 1.4]))
    assert rising.status == FAIL and "did not go down" in rising.detail
    few = checks.check_loss_decreases(_points([2.0, 1.0]))
    assert few.status == FAIL and "at least 3" in few.detail
    nan = checks.check_loss_decreases(_points([2.0, None, 1.0]))
    assert nan.status == FAIL and "not finite" in nan.detail


def test_loss_decreases_uses_training_losses_in_step_order():
    points = [LossPoint(6, "loss", 0.5, "b"), LossPoint(2, "loss", 2.0, "a"), LossPoint(4, "loss", 1.0, "a"),
              LossPoint(6, "val_loss", 9.0, "b")]
    verdict = checks.check_loss_decreases(points)
    assert verdict.status == PASS
    assert "(steps 2-2) 2" in verdict.detail and "(steps 6-6) 0.5" in verdict.detail


# ---- finite loss ----------------------------------------------------------------------------------


def test_finite_loss_passes_on_finite_values():
    verdict = checks.check_finite_loss(_points([2.0, 1.5]) + _points([1.2], name="val_loss"))
    assert verdict.status == PASS and "all 3 loss values" in verdict.detail


@pytest.mark.parametrize("bad", [None, math.inf, -math.inf, math.nan])
def test_finite_loss_fails_on_nan_and_inf(bad):
    verdict = checks.check_finite_loss(_points([2.0, bad, 1.0]))
    assert verdict.status == FAIL
    assert "1 of 3 loss values are not finite, first at step 4" in verdict.detail
    assert verdict.lines[0].endswith("(m:2)")


def test_finite_loss_fails_without_records_and_on_unreadable_lines():
    assert checks.check_finite_loss([]).status == FAIL
    verdict = checks.check_finite_loss(_points([1.0]), unreadable=["launch-1/metrics.jsonl:3: not JSON"])
    assert verdict.status == FAIL and verdict.lines == ("launch-1/metrics.jsonl:3: not JSON",)


def test_skip_carries_its_reason():
    verdict = checks.check_finite_loss([], skip="script mode: no metrics")
    assert (verdict.status, verdict.detail) == (SKIP, "script mode: no metrics")


def test_read_losses_reads_nan_as_null_and_reports_bad_lines(tmp_path):
    run = tmp_path / "launch-1"
    run.mkdir()
    records = [{"kind": "train", "step": 2, "loss": 2.1}, {"kind": "train", "step": 4, "loss": None},
               {"kind": "validation", "step": 4, "val_loss": 1.5}, {"kind": "other", "step": 4}]
    text = "\n".join(json.dumps(r) for r in records) + "\n{broken\n"
    (run / "metrics.jsonl").write_text(text)
    points, unreadable = read_losses([str(run), str(tmp_path / "never-ran")])
    assert points == [LossPoint(2, "loss", 2.1, "launch-1/metrics.jsonl:1"),
                      LossPoint(4, "loss", None, "launch-1/metrics.jsonl:2"),
                      LossPoint(4, "val_loss", 1.5, "launch-1/metrics.jsonl:3")]
    assert len(unreadable) == 1 and unreadable[0].startswith("launch-1/metrics.jsonl:5: not JSON")


# ---- runs -----------------------------------------------------------------------------------------


def _outcome(label, code=0, timed_out=False, message="job finished", tail=()):
    return LaunchOutcome(label, f"/w/{label}", code, message, tuple(tail), 2.0, timed_out)


def test_runs_pass_when_every_planned_launch_exited_0():
    verdict = checks.check_runs([_outcome("a"), _outcome("b")], 2, 300)
    assert verdict.status == PASS and verdict.detail == "both launches exited 0 in 4.0 s (limit 300 s)"


def test_runs_fail_names_the_launch_and_shows_its_tail():
    failed = _outcome("launch 2 of 2", code=1, message="job failed: rank 1 exited with code 1",
                      tail=["Traceback", "ValueError: boom"])
    verdict = checks.check_runs([_outcome("launch 1 of 2"), failed], 2, 300)
    assert verdict.status == FAIL
    assert verdict.detail == "launch 2 of 2: job failed: rank 1 exited with code 1"
    assert verdict.lines == ("Traceback", "ValueError: boom")


def test_runs_fail_on_time_limit_even_with_exit_0():
    verdict = checks.check_runs([_outcome("launch 1 of 2", code=0, timed_out=True)], 2, 30)
    assert verdict.status == FAIL and "time limit of 30 s reached during launch 1 of 2" in verdict.detail


def test_runs_fail_when_a_launch_could_not_start():
    never = LaunchOutcome("launch 2 of 2", "/w/2", None, "the time limit was reached before it", timed_out=True)
    verdict = checks.check_runs([_outcome("launch 1 of 2"), never], 2, 30)
    assert verdict.status == FAIL and verdict.detail.startswith("launch 2 of 2 did not start")


# ---- parameters -----------------------------------------------------------------------------------


def test_same_parameters_pass_and_fail():
    a = np.arange(5, dtype=np.float64)
    assert checks.check_same_parameters({0: a, 1: a.copy()}, 2, "/d").status == PASS
    b = a.copy()
    b[3] += 1e-12
    verdict = checks.check_same_parameters({0: a, 1: b}, 2, "/d")
    assert verdict.status == FAIL and "rank 1 differs from rank 0 in 1 of 5 values" in verdict.detail


def test_same_parameters_missing_rank_and_shape_mismatch():
    a = np.zeros(4)
    missing = checks.check_same_parameters({0: a}, 3, "/d")
    assert missing.status == FAIL and "rank1.npy, rank2.npy in /d" in missing.detail
    shaped = checks.check_same_parameters({0: a, 1: np.zeros(3)}, 2, "/d")
    assert shaped.status == FAIL and "3 parameter values" in shaped.detail


def test_same_parameters_identical_nans_count_as_identical():
    a = np.array([np.nan, 1.0])
    assert checks.check_same_parameters({0: a, 1: a.copy()}, 2, "/d").status == PASS


def test_same_parameters_one_rank_is_a_skip():
    assert checks.check_same_parameters({0: np.zeros(2)}, 1, "/d").status == SKIP


# ---- checkpoint resume ----------------------------------------------------------------------------

FIRST = {"status": "max_steps", "steps": 10, "checkpoint": "/w/checkpoints/ckpt-000000010.pt",
         "resumed_from_step": None}
SECOND = {"status": "max_steps", "steps": 20, "resumed_from_step": 10}


def test_resume_pass():
    verdict = checks.check_resume(FIRST, SECOND, 10)
    assert verdict.status == PASS
    assert "stopped at step 10 and saved ckpt-000000010.pt" in verdict.detail and "step 20" in verdict.detail


def test_resume_fails_when_second_started_from_scratch():
    verdict = checks.check_resume(FIRST, {**SECOND, "resumed_from_step": None}, 10)
    assert verdict.status == FAIL and "started from scratch" in verdict.detail


def test_resume_fails_without_checkpoint_or_when_not_finished():
    assert checks.check_resume({**FIRST, "checkpoint": None}, SECOND, 10).status == FAIL
    stopped = checks.check_resume(FIRST, {**SECOND, "status": "stopped", "steps": 14}, 10)
    assert stopped.status == FAIL and "'stopped'" in stopped.detail
    assert checks.check_resume(FIRST, None, 10).status == FAIL
    assert checks.check_resume(None, None, 10).status == FAIL


def test_resume_skipped_when_epochs_end_before_the_split():
    verdict = checks.check_resume({**FIRST, "status": "completed", "steps": 6}, SECOND, 10)
    assert verdict.status == SKIP and "all its epochs in 6 steps" in verdict.detail
