"""Turn the launches' outcomes and run directories into the five verdicts, per spec mode.

Managed training gets every check. A script-mode spec gets ``runs`` plus whatever the script
itself reports (a ``metrics.jsonl`` in ``$HVDJOB_RUN_DIR``, dumps in ``$HVDJOB_PARAM_DUMP``); the
rest are skipped with the reason.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

from hvdrun_cli.smoke import checks
from hvdrun_cli.smoke.evidence import dump_dir_of, has_metrics, read_losses, read_param_dumps, read_summary
from hvdrun_cli.smoke.model import PASS, LaunchOutcome, Verdict

NOT_REACHED = "not reached: the job did not finish (see runs)"
SCRIPT_NO_METRICS = ("script mode: the script wrote no metrics.jsonl to $HVDJOB_RUN_DIR, so there are no "
                     "losses to check")
SCRIPT_NO_DUMPS = ("script mode: the script wrote no rank<N>.npy parameter dumps to $HVDJOB_PARAM_DUMP, so "
                   "there is nothing to compare")
SCRIPT_RESUME = ("script mode: the script saves and resumes its own checkpoints; hvdjob cannot stop it at a "
                 "chosen step and resume it")


def _started(outcomes: Sequence[LaunchOutcome]) -> List[str]:
    return [o.run_dir for o in outcomes if o.exit_code is not None]


def _loss_verdicts(outcomes: Sequence[LaunchOutcome], finished: bool,
                   absent: Optional[str]) -> List[Verdict]:
    """finite-loss and loss-decreases. ``absent``: why a missing metrics file is a skip, not a failure.

    A non-finite loss is reported even when the job failed (it is often why); the trend needs the
    whole run.
    """
    points, unreadable = read_losses(_started(outcomes))
    if not points and not unreadable:
        why = absent or (None if finished else NOT_REACHED)
        return [checks.check_finite_loss([], skip=why), checks.check_loss_decreases([], skip=why)]
    return [checks.check_finite_loss(points, unreadable),
            checks.check_loss_decreases(points, skip=None if finished else NOT_REACHED)]


def judge_managed(outcomes: Sequence[LaunchOutcome], ranks: int, resume_step: int,
                  time_limit_s: float) -> List[Verdict]:
    """All five checks for a stop-at-``resume_step``-then-resume pair of launches."""
    runs = checks.check_runs(outcomes, 2, time_limit_s)
    finished = runs.status == PASS
    skip = None if finished else NOT_REACHED
    verdicts = [runs, *_loss_verdicts(outcomes, finished, None)]
    dump_dir = dump_dir_of(outcomes[-1].run_dir)
    verdicts.append(checks.check_same_parameters(read_param_dumps(dump_dir) if finished else {}, ranks,
                                                 dump_dir, skip))
    first = read_summary(outcomes[0].run_dir) if finished else None
    second = read_summary(outcomes[1].run_dir) if finished else None
    verdicts.append(checks.check_resume(first, second, resume_step, skip))
    return verdicts


def judge_script(outcomes: Sequence[LaunchOutcome], ranks: int, time_limit_s: float) -> List[Verdict]:
    """``runs``, and the checks the script's own output makes possible."""
    runs = checks.check_runs(outcomes, 1, time_limit_s)
    finished = runs.status == PASS
    run_dir = outcomes[0].run_dir
    absent = None if has_metrics(run_dir) else (SCRIPT_NO_METRICS if finished else NOT_REACHED)
    verdicts = [runs, *_loss_verdicts(outcomes, finished, absent)]
    dump_dir = dump_dir_of(run_dir)
    dumps = read_param_dumps(dump_dir) if finished else {}
    params_skip = None if dumps else (SCRIPT_NO_DUMPS if finished else NOT_REACHED)
    verdicts.append(checks.check_same_parameters(dumps, ranks, dump_dir, params_skip))
    verdicts.append(checks.check_resume(None, None, 0, SCRIPT_RESUME))
    return verdicts
