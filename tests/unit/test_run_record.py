"""What every rank records per logging window, through the Reporter (no framework needed)."""
from __future__ import annotations

import json
import os
import threading
import time

from hvdrun_cli.adapters.base import RankContext
from hvdrun_cli.adapters.reporting import Reporter
from hvdrun_cli.adapters.run_record import ScalarLog, timing_path


def _windows(run_dir, rank):
    with open(timing_path(str(run_dir), rank)) as fh:
        return [json.loads(line) for line in fh]


def test_each_rank_records_its_window_with_the_measured_times(tmp_path, capsys) -> None:
    for rank in (0, 1):
        reporter = Reporter(RankContext(rank, 2, rank, 2, str(tmp_path), attempt=1), total_steps=40, epochs=1,
                            log_interval=10)
        for _ in range(10):
            reporter.first_step()
        reporter.progress(epoch=0, global_step=10, loss=0.5, accuracy=0.5, lr=0.1, samples_done=640,
                          step_time_s=0.02, allreduce_wait_s=0.005 * (rank + 1))
        reporter.progress(epoch=0, global_step=20, loss=0.4, accuracy=0.6, lr=0.1, samples_done=1280)
    for rank in (0, 1):
        first, second = _windows(tmp_path, rank)
        assert (first["rank"], first["attempt"], first["step"], first["steps"]) == (rank, 1, 10, 10)
        assert first["step_time_s"] == 0.02 and first["allreduce_wait_s"] == 0.005 * (rank + 1)
        # A loop that measured nothing: wall time per step of the window, and no invented wait.
        assert second["steps"] == 10 and second["step_time_s"] > 0 and second["allreduce_wait_s"] is None
    out = capsys.readouterr().out
    assert "hvdjob: at step 10 total=40 epoch=1/1 loss=0.5 accuracy=0.5 samples_per_sec=" in out
    assert not (tmp_path / "tensorboard").exists()  # no framework given: no TensorBoard


def test_scalar_log_writes_nothing_on_other_ranks_or_when_off(tmp_path) -> None:
    ScalarLog(str(tmp_path), "torch", rank=1).log(1, loss=0.5)
    ScalarLog(str(tmp_path), "torch", rank=0, enabled=False).log(1, loss=0.5)
    assert list(tmp_path.iterdir()) == []


def test_scalar_log_without_a_framework_says_so_once(tmp_path, capsys, monkeypatch) -> None:
    import hvdrun_cli.adapters.run_record as run_record

    monkeypatch.setattr(run_record, "detect_framework", lambda: None)
    log = ScalarLog(str(tmp_path), rank=0)
    log.log(1, loss=0.5)
    log.log(2, loss=0.4)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("hvdjob: TensorBoard events are not written: no framework")


def test_a_fork_waits_for_the_writer_import_so_the_child_inherits_no_held_import_lock() -> None:
    """DataLoader workers are forked children: forked mid-import, one could wait for ever on that import."""
    from hvdrun_cli.adapters import run_record

    done = threading.Event()

    def slow_import() -> None:
        time.sleep(0.5)
        done.set()

    run_record.start_preload(slow_import)
    pid = os.fork()
    if pid == 0:
        os._exit(0 if done.is_set() else 1)
    assert done.is_set()  # the parent waited before forking
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0  # and the child saw the import finished
