"""How a failed run is summed up: which rank's log is shown (fed by hand, no processes)."""
from __future__ import annotations

import io
import time
from pathlib import Path

from hvdrun_cli.hosts.model import SlotInfo
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


GLOO_RECV_TIMEOUT = ("[{r}] horovod.common.exceptions.HorovodInternalError: [gloo/transport/tcp/unbound_buffer.cc:81] "
                     "Timed out waiting 30000ms for recv operation to complete")


def _two_host_execution(tmp_path: Path) -> Execution:
    layout = tuple(SlotInfo(r, 4, r % 2, 2, r // 2, 2, "n1" if r < 2 else "n2") for r in range(4))
    plan = LaunchPlan(launcher="srun", processes=(), layout=layout, hosts=(), run_dir=str(tmp_path), run_id="r2")
    return Execution(plan, terminal=io.StringIO(), install_signal_handlers=False)


def _timed_out_peers(execution: Execution, ranks) -> None:
    for r in ranks:
        execution.router.feed(f"[{r}] hvdjob: rank {r} started (pid 1{r} on {'n1' if r < 2 else 'n2'})\n".encode())
    for r in ranks:
        execution.router.feed(GLOO_RECV_TIMEOUT.format(r=r).encode() + b"\n")
        execution.router.feed(f"[{r}] hvdjob: rank {r} exited with code 1\n".encode())


def test_a_host_whose_ranks_went_silent_is_named_when_its_peers_only_timed_out_waiting(tmp_path: Path) -> None:
    """A node cut off from the network: its ranks report nothing, the others end in Gloo's timeout."""
    execution = _two_host_execution(tmp_path)
    _timed_out_peers(execution, (0, 1))
    execution._state.failure = RankEnd(0, 1, None, time.monotonic())
    result = execution._result([1])
    execution.router.close()
    assert result.failed_rank == 2
    assert result.message.startswith("job failed: host n2 stopped responding (ranks 2, 3 ran there and never "
                                     "reported how they ended); rank 0 exited with code 1 waiting for them; "
                                     "last lines of "), result.message
    assert "Timed out waiting 30000ms" in result.tail[-1]


def test_a_hung_rank_is_named_when_its_host_mates_ended(tmp_path: Path) -> None:
    execution = _two_host_execution(tmp_path)
    _timed_out_peers(execution, (0, 1, 3))
    execution._state.failure = RankEnd(0, 1, None, time.monotonic())
    result = execution._result([1])
    execution.router.close()
    assert result.failed_rank == 2
    assert result.message.startswith("job failed: rank 2 on n2 stopped responding (it never reported how it "
                                     "ended); rank 0 exited with code 1 waiting for it"), result.message


def test_ranks_that_did_not_report_are_not_blamed_when_a_rank_failed_on_its_own(tmp_path: Path) -> None:
    """Ranks killed with the job may end without a word; the rank with its own error is the cause."""
    execution = _two_host_execution(tmp_path)
    execution.router.feed(b"[1] ValueError: bad shape\n")
    execution.router.feed(b"[1] hvdjob: rank 1 exited with code 1\n")
    execution._state.failure = RankEnd(1, 1, None, time.monotonic())
    result = execution._result([1])
    execution.router.close()
    assert result.failed_rank == 1
    assert result.message.startswith("job failed: rank 1 exited with code 1; last lines of "), result.message
