"""How a failed run is summed up: which rank's log is shown (fed by hand, no processes)."""
from __future__ import annotations

import io
import time
from pathlib import Path

from hvdrun_cli.launch.execute import Execution
from hvdrun_cli.launch.output import RankEnd
from hvdrun_cli.launch.plan import LaunchPlan


def test_the_rank_that_printed_the_error_is_shown_even_when_another_ended_first(tmp_path: Path) -> None:
    plan = LaunchPlan(launcher="local", processes=(), layout=(), hosts=(), run_dir=str(tmp_path), run_id="r1")
    execution = Execution(plan, terminal=io.StringIO(), install_signal_handlers=False)
    router = execution.router
    for line in (b"[0] hvdjob: rank 0 started (pid 10 on h)\n", b"[1] hvdjob: rank 1 started (pid 11 on h)\n",
                 b"[1] hvdjob: rank 1 exited with code 2\n",  # left quietly: rank 0 tells the user
                 b"[0] error: checkpoint.dir: checkpoint directory is not writable: Read-only file system\n",
                 b"[0] hvdjob: rank 0 was killed by SIGTERM\n"):  # stopped by hvdjob before it could exit
        router.feed(line)
    execution._state.failure = RankEnd(1, 2, None, time.monotonic())
    result = execution._result([2, 2])
    router.close()
    assert result.exit_code == 2 and result.failed_rank == 0
    assert result.message.startswith("job failed: rank 1 exited with code 2 (rank 0 reported the error); "
                                     "last lines of ")
    assert result.tail == ("error: checkpoint.dir: checkpoint directory is not writable: Read-only file system",)
