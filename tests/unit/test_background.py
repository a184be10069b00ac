"""Calls and destructors handed off a rank's training thread (adapters/background.py)."""
from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from hvdrun_cli.adapters.background import DaemonWorker


def test_a_released_objects_destructor_runs_on_the_worker_without_blocking_the_caller() -> None:
    release, destroyed = threading.Event(), threading.Event()
    seen = {}

    class SlowToDestroy:  # like a tf.data iterator whose destructor waits for the autotuning thread
        def __del__(self) -> None:
            seen["thread"] = threading.current_thread().name
            release.wait(10)
            destroyed.set()

    DaemonWorker("reaper-under-test").release(SlowToDestroy())
    # Back here while the destructor still waits: had it run on this thread, we would not be.
    assert not destroyed.is_set()
    release.set()
    assert destroyed.wait(10)
    assert seen["thread"] == "reaper-under-test"


def test_calls_run_in_order_and_their_results_and_errors_reach_the_future() -> None:
    worker, order = DaemonWorker("calls-under-test"), []
    first = worker.submit(lambda: order.append(1) or "one")
    failing = worker.submit(lambda: 1 / 0)
    last = worker.submit(lambda: order.append(3) or "three")
    assert (first.result(10), last.result(10)) == ("one", "three")
    assert order == [1, 3]
    with pytest.raises(ZeroDivisionError):
        failing.result(10)


def test_a_call_that_never_returns_does_not_keep_the_process_from_exiting() -> None:
    program = ("import threading\n"
               "from hvdrun_cli.adapters.background import DaemonWorker\n"
               "DaemonWorker('stuck').submit(threading.Event().wait)  # like an allreduce whose peer died\n"
               "print('done', flush=True)\n")
    finished = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert finished.returncode == 0 and finished.stdout.strip() == "done", finished.stderr
