"""What hvdjob says while it runs a job: tiny real processes stand in for ranks (no Horovod)."""
from __future__ import annotations

import io
import signal
import sys
import threading
import time
from pathlib import Path

from hvdrun_cli.launch.execute import Execution
from hvdrun_cli.launch.plan import LaunchPlan, ProcessSpec

SLEEPER = "import signal, sys, time; signal.signal(signal.SIGTERM, lambda *a: sys.exit(75)); time.sleep(60)"


def _plan(tmp_path: Path) -> LaunchPlan:
    argv = (sys.executable, "-m", "hvdrun_cli.launch.rank_io", "--", sys.executable, "-c", SLEEPER)
    return LaunchPlan(launcher="local", processes=(ProcessSpec(argv, env=(("HOROVOD_RANK", "0"),), rank=0),),
                      layout=(), hosts=(), run_dir=str(tmp_path), run_id=f"unit-{tmp_path.name}",
                      env=(("HVDJOB_RUN_ID", f"unit-{tmp_path.name}"),))


def test_ctrl_c_is_reported_as_sigint_and_launcher_log_tells_the_story(tmp_path: Path) -> None:
    terminal = io.StringIO()
    execution = Execution(_plan(tmp_path), terminal=terminal, install_signal_handlers=False)
    stopper = threading.Timer(3.0, execution.request_stop, args=(signal.SIGINT,))
    stopper.start()
    started = time.monotonic()
    result = execution.run()
    stopper.cancel()
    assert time.monotonic() - started < 30
    assert "hvdjob: SIGINT received; asking ranks to checkpoint and stop" in terminal.getvalue()
    assert "SIGTERM" not in terminal.getvalue()
    assert result.message == "job stopped on SIGINT; ranks saved a checkpoint"
    log = (tmp_path / "launcher.log").read_text()
    assert "attempt 1: run unit-" in log and "launcher local, 0 ranks" in log
    assert "started pid " in log and "hvdrun_cli.launch.rank_io" in log
    assert "SIGINT received" in log
    assert log.rstrip().endswith("ended: exit code 75: job stopped on SIGINT; ranks saved a checkpoint")
