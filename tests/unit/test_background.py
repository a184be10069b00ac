"""Calls and destructors handed off a rank's training thread (adapters/background.py)."""
from __future__ import annotations

import subprocess
import sys
import threading

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


def test_released_objects_are_destroyed_in_the_order_they_were_released() -> None:
    order, all_done = [], threading.Event()

    class Tracked:
        def __init__(self, n: int) -> None:
            self.n = n

        def __del__(self) -> None:
            order.append(self.n)
            if len(order) == 3:
                all_done.set()

    worker = DaemonWorker("order-under-test")
    for n in range(3):
        worker.release(Tracked(n))
    assert all_done.wait(10)
    assert order == [0, 1, 2]


def test_a_destructor_that_never_returns_does_not_keep_the_process_from_exiting() -> None:
    program = ("import threading\n"
               "from hvdrun_cli.adapters.background import DaemonWorker\n"
               "class Stuck:\n"
               "    def __del__(self):\n"
               "        threading.Event().wait()  # like a destructor waiting for a thread that never ends\n"
               "DaemonWorker('stuck').release(Stuck())\n"
               "print('done', flush=True)\n")
    finished = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert finished.returncode == 0 and finished.stdout.strip() == "done", finished.stderr
