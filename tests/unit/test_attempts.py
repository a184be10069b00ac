"""The restart loop with tiny real processes standing in for ranks (no Horovod)."""
from __future__ import annotations

import io
import re
import sys
from pathlib import Path

from hvdrun_cli.launch.attempts import run_attempts, should_restart
from hvdrun_cli.launch.execute import JobResult
from hvdrun_cli.launch.plan import LaunchPlan, ProcessSpec

# Fails with code 3 on attempt 0 and succeeds afterwards; says which attempt it saw.
RANK_CODE = (
    "import os, sys; a = os.environ['HVDJOB_ATTEMPT']; print('attempt', a, flush=True); "
    "sys.exit(3 if a == '0' else int(os.environ.get('LATER_EXIT', '0')))"
)


def _plan(tmp_path: Path, attempt: int, extra_env=()) -> LaunchPlan:
    argv = (sys.executable, "-m", "hvdrun_cli.launch.rank_io", "--", sys.executable, "-c", RANK_CODE)
    return LaunchPlan(
        launcher="local", processes=(ProcessSpec(argv, env=(("HOROVOD_RANK", "0"),), rank=0),), layout=(), hosts=(),
        run_dir=str(tmp_path), run_id=f"unit-{tmp_path.name}",
        env=(("HVDJOB_ATTEMPT", str(attempt)), ("HVDJOB_RUN_ID", f"unit-{tmp_path.name}"), *extra_env),
        attempt=attempt,
    )


def test_a_failed_rank_is_relaunched_with_the_next_attempt_number(tmp_path: Path) -> None:
    terminal = io.StringIO()
    result = run_attempts(lambda attempt: _plan(tmp_path, attempt), max_restarts=2, terminal=terminal, quiet=True)
    assert result.ok, result.message
    assert (tmp_path / "rank.0.log").read_text().count("attempt 1") == 1  # the log continues across attempts
    shown = terminal.getvalue()
    assert "hvdjob: attempt 1 of 3 failed (all ranks stopped " in shown
    assert "rank 0 exited with code 3" in shown
    launcher_log = (tmp_path / "launcher.log").read_text()
    assert re.search(r"hvdjob: attempt 2 of 3: relaunching the job [\d.]+ s after the failure; the script starts "
                     r"again \(it resumes only from checkpoints it saves itself\)$", launcher_log, re.M), launcher_log


def test_the_last_failure_names_its_attempt(tmp_path: Path) -> None:
    result = run_attempts(lambda attempt: _plan(tmp_path, attempt, (("LATER_EXIT", "4"),)), max_restarts=1,
                          terminal=io.StringIO(), quiet=True)
    assert result.exit_code == 4
    assert result.message.startswith("job failed on attempt 2 of 2: rank 0 exited with code 4")


def test_a_restart_that_cannot_be_planned_ends_with_the_last_failure_and_why(tmp_path: Path) -> None:
    from hvdrun_cli.errors import LaunchError

    def plan_for(attempt: int) -> LaunchPlan:
        if attempt == 1:
            raise LaunchError("cannot restart without n2 (lost): the other hosts have 2 slots for 4 ranks")
        return _plan(tmp_path, attempt)

    terminal = io.StringIO()
    result = run_attempts(plan_for, max_restarts=1, terminal=terminal, quiet=True)
    assert result.exit_code == 3
    assert result.report_lines() == ["job failed: not restarted after attempt 1 of 2: cannot restart without n2 (lost): "
                                     "the other hosts have 2 slots for 4 ranks"]
    assert "hvdjob: attempt 1 of 2 failed" in terminal.getvalue()
    assert "rank 0 exited with code 3" in terminal.getvalue()  # the failure itself was reported in full


def test_restart_policy() -> None:
    failed = JobResult(1, "job failed: rank 1 exited with code 1", failed_rank=1)
    assert should_restart(failed, attempt=0, max_restarts=1)
    assert not should_restart(failed, attempt=1, max_restarts=1)
    assert not should_restart(JobResult(0, "job finished"), 0, 3)
    assert not should_restart(JobResult(130, "job stopped on SIGINT", stopped_by_signal="SIGINT"), 0, 3)
    assert not should_restart(JobResult(75, "ranks saved a checkpoint and stopped on request"), 0, 3)
    # Bad input (a spec the ranks reject, an unusable checkpoint directory) fails the same way again.
    assert not should_restart(JobResult(2, "job failed: rank 0 exited with code 2"), 0, 3)
    assert should_restart(JobResult(124, "job stopped by the watchdog: ..."), 0, 3)
