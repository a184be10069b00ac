"""Rank supervisor and output routing, with tiny real child processes (no Horovod)."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from hvdrun_cli.launch.output import OutputRouter
from hvdrun_cli.launch.rank_io import slurm_gloo_env


def supervise(code: str, rank: str = "3") -> subprocess.CompletedProcess:
    env = dict(os.environ, HOROVOD_RANK=rank)
    return subprocess.run(
        [sys.executable, "-m", "hvdrun_cli.launch.rank_io", "--", sys.executable, "-c", code],
        env=env, capture_output=True, timeout=30, check=False,
    )


def test_every_line_is_prefixed_and_the_exit_code_kept() -> None:
    done = supervise("import sys; print('a'); sys.stderr.write('b\\n'); print('no newline', end=''); sys.exit(4)")
    lines = done.stdout.decode().splitlines()
    assert lines[0].startswith("[3] hvdjob: rank 3 started (pid ")
    assert lines[1:4] == ["[3] a", "[3] b", "[3] no newline"]
    assert lines[-1] == "[3] hvdjob: rank 3 exited with code 4"
    assert done.returncode == 4


def test_a_killed_rank_is_reported_by_signal_name() -> None:
    done = supervise("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", rank="1")
    assert done.stdout.decode().splitlines()[-1] == "[1] hvdjob: rank 1 was killed by SIGKILL"
    assert done.returncode == 128 + 9


def test_router_splits_ranks_into_logs_and_names_first_failure(tmp_path: Path) -> None:
    terminal = io.StringIO()
    router = OutputRouter(str(tmp_path), terminal)
    for raw in [
        b"[0] hvdjob: rank 0 started (pid 11 on h)\n",
        b"[1]<stdout>:[1] step 1\n",  # horovodrun's own label is removed
        b"[0] step 1\n",
        b"mpirun noise\n",
        b"[1] hvdjob: rank 1 exited with code 3\n",
        b"[0] hvdjob: rank 0 was killed by SIGTERM\n",
    ]:
        router.feed(raw)
    router.close()
    assert (tmp_path / "rank.1.log").read_text().splitlines() == ["step 1", "hvdjob: rank 1 exited with code 3"]
    assert "mpirun noise" in (tmp_path / "launcher.log").read_text()
    shown = terminal.getvalue().splitlines()
    assert "[1] step 1" in shown and "[0] step 1" in shown
    assert not any("started (pid" in line for line in shown)  # bookkeeping stays in the logs
    assert router.first_failure().rank == 1
    assert router.rank_pids == {0: 11}
    assert router.tail(1) == ["step 1"]


def test_srun_task_gets_horovod_rank_variables_from_layout(tmp_path: Path) -> None:
    layout = tmp_path / "layout.json"
    layout.write_text(
        '[{"rank":0,"size":2,"hostname":"n1","local_rank":0,"local_size":1,"cross_rank":0,"cross_size":2},'
        '{"rank":1,"size":2,"hostname":"n2","local_rank":0,"local_size":1,"cross_rank":1,"cross_size":2}]'
    )
    env = slurm_gloo_env({"HVDJOB_GLOO_LAYOUT": str(layout), "SLURM_PROCID": "1"})
    assert env["HOROVOD_RANK"] == "1" and env["HOROVOD_HOSTNAME"] == "n2" and env["HOROVOD_CROSS_RANK"] == "1"
    assert slurm_gloo_env({"SLURM_PROCID": "1"}) == {}


def test_peers_terminated_after_a_checkpointed_stop_are_not_failures(tmp_path: Path) -> None:
    router = OutputRouter(str(tmp_path), io.StringIO())
    router.feed(b"[0] hvdjob: rank 0 exited with code 75\n")  # saved a checkpoint, stopped on request
    router.feed(b"[1] hvdjob: rank 1 was killed by SIGTERM\n")  # srun --kill-on-bad-exit ended it
    assert router.first_failure() is None
    assert router.checkpointed_stop()
    router.feed(b"[2] hvdjob: rank 2 exited with code 1\n")  # a real failure still counts
    assert router.first_failure().rank == 2
    assert not router.checkpointed_stop()
    router.close()
