"""A rank supervisor stops its rank once hvdjob (or whatever started it) is gone: real processes."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from hvdrun_cli.launch.liveness import Launcher, launcher_identity_env, process_start_ticks

RANK = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(120)"
LIMIT_S = 20  # generous: the supervisor polls every 0.5 s and gives the rank 5 s to stop


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_for_pid(path: Path) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return int(path.read_text())
        time.sleep(0.05)
    raise AssertionError("the rank never started")


def _gone_within(pid: int, limit: float) -> float:
    started = time.monotonic()
    while _alive(pid) and time.monotonic() - started < limit:
        time.sleep(0.1)
    assert not _alive(pid), f"rank {pid} still runs {limit} s after its launcher died"
    return time.monotonic() - started


def _supervisor_argv(pidfile: Path) -> list:
    return [sys.executable, "-m", "hvdrun_cli.launch.rank_io", "--", sys.executable, "-c", RANK, str(pidfile)]


def test_the_rank_stops_when_the_process_that_started_its_supervisor_dies(tmp_path: Path) -> None:
    pidfile = tmp_path / "rank.pid"
    # A stand-in for hvdjob: starts the supervisor as hvdjob does, then dies without cleaning up
    # (possibly before the supervisor is even up: its pid and start time in the environment tell).
    starter = ("import subprocess, sys, os, time\n"
               "from hvdrun_cli.launch.liveness import launcher_identity_env\n"
               "env = dict(os.environ, **launcher_identity_env())\n"
               "subprocess.Popen(sys.argv[1:], env=env, stdout=subprocess.DEVNULL, start_new_session=True)\n"
               "time.sleep(1)\n"
               "os._exit(9)\n")
    env = dict(os.environ, HOROVOD_RANK="0")
    subprocess.run([sys.executable, "-c", starter, *_supervisor_argv(pidfile)], env=env, timeout=60, check=False)
    rank = _wait_for_pid(pidfile)
    _gone_within(rank, LIMIT_S)


def test_the_rank_stops_when_hvdjob_dies_though_its_parent_lives_on(tmp_path: Path) -> None:
    """Under mpirun or srun the supervisor's parent outlives hvdjob: the pid + start time tell."""
    launcher = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    pidfile = tmp_path / "rank.pid"
    env = dict(os.environ, HOROVOD_RANK="0", **launcher_identity_env(launcher.pid))
    supervisor = subprocess.Popen(_supervisor_argv(pidfile), env=env, stdout=subprocess.PIPE)
    try:
        rank = _wait_for_pid(pidfile)
        time.sleep(0.6)
        assert _alive(rank)  # the launcher lives: nothing happens
        launcher.kill()
        launcher.wait()
        _gone_within(rank, LIMIT_S)
        assert supervisor.wait(10) != 0
        assert supervisor.stdout is not None
        output = supervisor.stdout.read().decode()
        assert f"hvdjob (pid {launcher.pid}) is gone" in output
        assert "hvdjob: rank 0 was killed by SIGTERM" in output  # the rank got SIGTERM first
    finally:
        for proc in (launcher, supervisor):
            if proc.poll() is None:
                proc.kill()


def test_a_launcher_is_recognised_only_by_its_pid_and_start_time() -> None:
    env = launcher_identity_env()
    here = Launcher.visible_from_here(env)
    assert here is not None and here.alive() and here.start == process_start_ticks(os.getpid())
    assert not Launcher(os.getpid(), str(int(here.start) + 1)).alive()  # pid reused by another process
    other_kernel = dict(env, HVDJOB_LAUNCHER_BOOT="another-boot-id")
    assert Launcher.visible_from_here(other_kernel) is None  # a remote host: its pid means nothing here
    assert Launcher.visible_from_here({}) is None
