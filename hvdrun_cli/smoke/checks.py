"""The smoke checks as pure functions: evidence in, one :class:`Verdict` out.

Each takes an optional ``skip`` reason: when the evidence cannot exist (script mode, a launch that
failed earlier), the check is reported as skipped with that reason instead of failing twice for
one cause or passing on nothing.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from hvdrun_cli.smoke.model import (
    CHECKPOINT_RESUME,
    FAIL,
    FINITE_LOSS,
    LOSS_DECREASES,
    PASS,
    RUNS,
    SAME_PARAMETERS,
    SKIP,
    LaunchOutcome,
    LossPoint,
    Verdict,
)

MIN_TREND_RECORDS = 3  # a first and a last third need at least one record each
FINISHED = ("max_steps", "completed")


def check_runs(outcomes: Sequence[LaunchOutcome], planned: int, time_limit_s: float) -> Verdict:
    """Every planned launch started, exited 0 and finished within the wall-clock limit."""
    total = sum(o.wall_time_s for o in outcomes)
    for outcome in outcomes:
        if outcome.exit_code is None:
            return Verdict(RUNS, FAIL, f"{outcome.label} did not start: {outcome.message}", time_s=total)
        if outcome.timed_out:
            return Verdict(RUNS, FAIL, f"time limit of {time_limit_s:g} s reached during {outcome.label}; "
                                       f"the job was stopped", outcome.tail, total)
        if not outcome.ok:
            return Verdict(RUNS, FAIL, f"{outcome.label}: {outcome.message}", outcome.tail, total)
    if len(outcomes) < planned:
        return Verdict(RUNS, FAIL, f"only {len(outcomes)} of {planned} launches ran", time_s=total)
    what = {1: "the launch", 2: "both launches"}.get(planned, f"all {planned} launches")
    return Verdict(RUNS, PASS, f"{what} exited 0 in {total:.1f} s (limit {time_limit_s:g} s)", time_s=total)


def _shown(value: Optional[float]) -> str:
    """A loss for a message; the reporter writes NaN as null."""
    return "NaN" if value is None else repr(value)


def _finite(value: Optional[float]) -> bool:
    return value is not None and math.isfinite(value)


def check_finite_loss(points: Sequence[LossPoint], unreadable: Sequence[str] = (),
                      skip: Optional[str] = None) -> Verdict:
    """Every training and validation loss the job recorded is a finite number."""
    if skip:
        return Verdict(FINITE_LOSS, SKIP, skip)
    if unreadable:
        return Verdict(FINITE_LOSS, FAIL, f"{len(unreadable)} metrics record(s) could not be read",
                       tuple(unreadable[:5]))
    if not points:
        return Verdict(FINITE_LOSS, FAIL, "metrics.jsonl holds no loss values")
    bad = [p for p in points if not _finite(p.value)]
    if bad:
        first = bad[0]
        lines = tuple(f"step {p.step}: {p.name} = {_shown(p.value)} ({p.source})" for p in bad[:5])
        return Verdict(FINITE_LOSS, FAIL, f"{len(bad)} of {len(points)} loss values are not finite, first at "
                                          f"step {first.step}: {first.name} = {_shown(first.value)}", lines)
    return Verdict(FINITE_LOSS, PASS, f"all {len(points)} loss values are finite "
                                      f"(steps {points[0].step}-{points[-1].step})")


@dataclass(frozen=True)
class Trend:
    """Mean loss of the first and of the last third of the records (``window`` records each)."""

    first_mean: float
    last_mean: float
    window: int

    @property
    def decreasing(self) -> bool:
        return self.last_mean < self.first_mean


def loss_trend(values: Sequence[float]) -> Trend:
    """Compare the first and the last third of ``values`` (in step order) by their means.

    Thirds rather than first and last value: a single noisy interval cannot decide the verdict,
    and the middle third, where a warm-up or a resume may sit, is left out. Needs at least
    ``MIN_TREND_RECORDS`` values.
    """
    if len(values) < MIN_TREND_RECORDS:
        raise ValueError(f"need at least {MIN_TREND_RECORDS} values, got {len(values)}")
    window = len(values) // 3
    first, last = values[:window], values[-window:]
    return Trend(sum(first) / window, sum(last) / window, window)


def check_loss_decreases(points: Sequence[LossPoint], skip: Optional[str] = None) -> Verdict:
    """The training loss went down: mean of the last third of records < mean of the first third."""
    if skip:
        return Verdict(LOSS_DECREASES, SKIP, skip)
    train = sorted((p for p in points if p.name == "loss"), key=lambda p: p.step)
    if len(train) < MIN_TREND_RECORDS:
        return Verdict(LOSS_DECREASES, FAIL, f"only {len(train)} training loss record(s); at least "
                                             f"{MIN_TREND_RECORDS} are needed to judge (raise --steps)")
    if not all(_finite(p.value) for p in train):
        return Verdict(LOSS_DECREASES, FAIL, "cannot judge: some training losses are not finite")
    trend = loss_trend([float(p.value) for p in train])  # type: ignore[arg-type]
    w = trend.window
    span = (f"mean of the first {w} record(s) (steps {train[0].step}-{train[w - 1].step}) {trend.first_mean:.4g}, "
            f"of the last {w} (steps {train[-w].step}-{train[-1].step}) {trend.last_mean:.4g}")
    if trend.decreasing:
        return Verdict(LOSS_DECREASES, PASS, f"loss went down: {span}")
    return Verdict(LOSS_DECREASES, FAIL, f"loss did not go down: {span}")


def check_same_parameters(dumps: Mapping[int, Any], ranks: int, dump_dir: str,
                          skip: Optional[str] = None) -> Verdict:
    """Every rank ends with bit-identical parameters (numpy arrays from each rank's dump)."""
    if skip:
        return Verdict(SAME_PARAMETERS, SKIP, skip)
    if ranks < 2:
        return Verdict(SAME_PARAMETERS, SKIP, "one rank: there is nothing to compare it with")
    missing = [r for r in range(ranks) if r not in dumps]
    if missing:
        names = ", ".join(f"rank{r}.npy" for r in missing)
        return Verdict(SAME_PARAMETERS, FAIL, f"no parameter dump from rank(s) {missing} (expected {names} "
                                              f"in {dump_dir})")
    reference = dumps[0]
    for rank in range(1, ranks):
        other = dumps[rank]
        if other.shape != reference.shape:
            return Verdict(SAME_PARAMETERS, FAIL, f"rank {rank} has {other.size} parameter values, rank 0 has "
                                                  f"{reference.size}")
        if other.tobytes() != reference.tobytes():
            differ = int((other != reference).sum())
            worst = float(abs(other - reference).max())
            return Verdict(SAME_PARAMETERS, FAIL, f"rank {rank} differs from rank 0 in {differ} of "
                                                  f"{reference.size} values (largest difference {worst:.3g})")
    who = "both ranks" if ranks == 2 else f"all {ranks} ranks"
    return Verdict(SAME_PARAMETERS, PASS, f"{who} hold bit-identical parameters "
                                          f"({reference.size} values)")


def check_resume(first: Optional[Mapping[str, Any]], second: Optional[Mapping[str, Any]], resume_step: int,
                 skip: Optional[str] = None) -> Verdict:
    """The first launch stopped at ``resume_step`` with a checkpoint; the second resumed from it and finished.

    ``first``/``second`` are the launches' ``summary.json`` contents (None: not written).
    """
    if skip:
        return Verdict(CHECKPOINT_RESUME, SKIP, skip)
    if first is None:
        return Verdict(CHECKPOINT_RESUME, FAIL, "the first launch wrote no summary.json")
    stopped_at = first.get("steps")
    if first.get("status") == "completed" and isinstance(stopped_at, int) and stopped_at < resume_step:
        return Verdict(CHECKPOINT_RESUME, SKIP, f"training ran all its epochs in {stopped_at} steps, before the "
                                                f"first launch's stop at step {resume_step}: nothing to resume "
                                                f"(lower --steps or raise train.epochs)")
    checkpoint = first.get("checkpoint")
    if not checkpoint:
        return Verdict(CHECKPOINT_RESUME, FAIL, f"the first launch stopped at step {stopped_at} without saving "
                                                f"a checkpoint")
    if second is None:
        return Verdict(CHECKPOINT_RESUME, FAIL, "the resumed launch wrote no summary.json")
    resumed = second.get("resumed_from_step")
    if resumed != stopped_at:
        start = "from scratch" if resumed is None else f"from step {resumed}"
        return Verdict(CHECKPOINT_RESUME, FAIL, f"the second launch started {start}, not from the checkpoint "
                                                f"saved at step {stopped_at}")
    status, steps = second.get("status"), second.get("steps")
    if status not in FINISHED or not isinstance(steps, int) or steps <= resumed:
        return Verdict(CHECKPOINT_RESUME, FAIL, f"the second launch resumed at step {resumed} but ended with "
                                                f"status {status!r} at step {steps}")
    return Verdict(CHECKPOINT_RESUME, PASS, f"the first launch stopped at step {stopped_at} and saved "
                                            f"{os.path.basename(str(checkpoint))}; the second resumed from it "
                                            f"and finished at step {steps} ({status})")
