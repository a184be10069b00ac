"""The launcher-side progress view: what it reads from rank lines, and the plain (non-TTY) line."""
from __future__ import annotations

import io

from hvdrun_cli.launch.output import OutputRouter
from hvdrun_cli.launch.progress_view import ProgressState, ProgressView, Snapshot, format_duration, progress_view


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# What rank 0 of a managed job prints after each progress line (adapters/reporting.py).
MANAGED_LINE = "hvdjob: at step {step} total=100 epoch=1/2 loss=0.41 accuracy=0.88 samples_per_sec=3216.4"


def test_rank_0_marks_give_step_total_loss_rate_and_eta() -> None:
    clock = Clock()
    state = ProgressState(np=2, clock=clock)
    state.observe(0, "hvdjob: rank 0 started (pid 11 on box)")
    state.observe(1, "hvdjob: rank 1 started (pid 12 on box)")
    state.observe(0, MANAGED_LINE.format(step=10))
    clock.now += 10.0
    state.observe(0, MANAGED_LINE.format(step=30))  # 2 steps/s, 70 left
    snap = state.snapshot()
    assert (snap.step, snap.total, snap.epoch) == (30, 100, (1, 2))
    assert snap.percent == 30.0
    assert snap.loss == 0.41 and snap.accuracy == 0.88 and snap.samples_per_sec == 3216.4
    assert snap.eta_s == 35.0
    assert (snap.alive, snap.ranks) == (2, 2)
    assert snap.describe() == ("step 30/100 (30%) epoch 1/2 ETA 0:35 3,216 samples/s loss 0.4100 "
                               "2/2 ranks alive")


def test_marks_from_any_rank_move_the_step_and_ends_count_ranks_down() -> None:
    clock = Clock()
    state = ProgressState(np=2, clock=clock)
    for rank in (0, 1):
        state.observe(rank, f"hvdjob: rank {rank} started (pid 1 on box)")
    state.observe(0, MANAGED_LINE.format(step=10))
    clock.now += 5
    state.observe(1, "hvdjob: at step 20")
    state.observe(1, "hvdjob: rank 1 was killed by SIGKILL")
    snap = state.snapshot()
    assert snap.step == 20 and snap.eta_s == 40.0
    assert (snap.alive, snap.ranks) == (1, 2)


def test_other_ranks_move_the_step_only_and_ordinary_output_is_ignored() -> None:
    state = ProgressState(np=2)
    state.observe(0, "epoch 1/2 step 20/100 loss 0.4100")  # rank 0's human line: for people only
    state.observe(0, "hvdjob: at step 3 total")  # not a mark
    assert state.snapshot().step is None
    state.observe(1, MANAGED_LINE.format(step=50))
    snap = state.snapshot()
    assert (snap.step, snap.total, snap.loss) == (50, None, None)


def test_a_rank_reporting_an_older_step_does_not_move_the_job_back() -> None:
    clock = Clock()
    state = ProgressState(clock=clock)
    state.observe(0, MANAGED_LINE.format(step=40))
    clock.now += 10
    state.observe(1, "hvdjob: at step 38")
    state.observe(0, MANAGED_LINE.format(step=60))
    snap = state.snapshot()
    assert snap.step == 60 and snap.eta_s == 20.0


def test_a_restart_that_resumes_earlier_restarts_the_rate() -> None:
    clock = Clock()
    state = ProgressState(np=1, clock=clock)
    state.observe(0, "hvdjob: rank 0 started (pid 1 on box)")
    state.observe(0, MANAGED_LINE.format(step=40))
    clock.now += 10
    state.observe(0, MANAGED_LINE.format(step=50))
    state.observe(0, "hvdjob: rank 0 exited with code 1")
    clock.now += 1
    state.observe(0, "hvdjob: rank 0 started (pid 2 on box)")
    state.observe(0, MANAGED_LINE.format(step=30))  # resumed from the step-30 checkpoint
    snap = state.snapshot()
    assert snap.step == 30 and snap.eta_s is None  # one point since the resume: no rate yet
    assert snap.alive == 1


def test_a_script_mark_with_step_and_total_is_enough(capsys, monkeypatch) -> None:
    from hvdrun_cli.adapters.run_record import report_progress

    monkeypatch.setenv("HOROVOD_RANK", "0")
    report_progress(5, 20, loss=1.25)
    line = capsys.readouterr().out.strip()
    assert line == "hvdjob: at step 5 total=20 loss=1.25"
    state = ProgressState(np=1)
    state.observe(0, line)
    snap = state.snapshot()
    assert (snap.step, snap.total, snap.loss, snap.samples_per_sec) == (5, 20, 1.25, None)
    assert snap.describe() == "step 5/20 (25%) loss 1.2500 0/1 ranks alive"


def test_durations_read_like_a_clock() -> None:
    assert format_duration(35) == "0:35"
    assert format_duration(3725) == "1:02:05"
    assert Snapshot(step=3).describe() == "step 3 0/0 ranks alive"


def test_plain_view_prints_a_line_only_when_progress_moved() -> None:
    out = io.StringIO()
    view = ProgressView(ProgressState(np=1, clock=Clock()), out, tty=False, plain_every_s=3600)
    with view:
        view.print_plain_line()  # nothing yet
        view.observe(0, "hvdjob: rank 0 started (pid 1 on box)")
        view.observe(0, MANAGED_LINE.format(step=10))
        view.print_plain_line()
        view.print_plain_line()  # no change: no second line
        view.observe(0, "hvdjob: at step 12")
    lines = out.getvalue().splitlines()
    assert lines == ["hvdjob: progress step 10/100 (10%) epoch 1/2 3,216 samples/s loss 0.4100 1/1 ranks alive",
                     "hvdjob: progress step 12/100 (12%) epoch 1/2 3,216 samples/s loss 0.4100 1/1 ranks alive"]


def test_auto_mode_picks_plain_lines_when_output_is_not_a_terminal() -> None:
    assert progress_view(2, "off") is None
    view = progress_view(2, "auto", terminal=io.StringIO())
    assert view is not None and not view._tty


def test_router_observers_see_every_rank_line_including_hidden_marks(tmp_path) -> None:
    seen = []
    router = OutputRouter(str(tmp_path), io.StringIO())
    router.add_observer(lambda rank, text: seen.append((rank, text)))
    router.feed(b"[0] hvdjob: at step 3\n")
    router.feed(b"[1] hello\n")
    router.feed(b"launcher line\n")
    router.close()
    assert seen == [(0, "hvdjob: at step 3"), (1, "hello")]


def test_forced_bar_draws_with_rich_even_into_a_file() -> None:
    out = io.StringIO()
    view = progress_view(1, "bar", terminal=out)
    with view:
        view.observe(0, "hvdjob: rank 0 started (pid 1 on box)")
        view.observe(0, "hvdjob: at step 3 total=10 loss=0.5")
    drawn = out.getvalue()
    assert "\x1b[" in drawn and "━" in drawn  # a rich bar, with terminal escapes
    assert "step 3/10 (30%)" in drawn and "hvdjob: progress" not in drawn
