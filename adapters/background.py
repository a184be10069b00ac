"""Work a rank hands off its training thread: destructors that wait.

:class:`DaemonWorker` runs calls one at a time, in order, on a daemon thread. Daemon, unlike
``concurrent.futures``' workers, which the interpreter joins at exit before Horovod's own exit
handler shuts Horovod down: a call left waiting would then hang the exit.

The Keras loop drops finished ``tf.data`` iterators there: an iterator's destructor waits for
tf.data's autotuning thread to stop, which can take a few hundred milliseconds (measured here: 1 in 4
took 0.37-0.38 s after an epoch of 12 ms steps, about 1 ms with autotuning off). Deleted where the
epoch ends, it stalled one rank while every other rank waited for it in the epoch's allreduce:
0.44-0.49 s at about one epoch end in two on the managed Keras benchmark job.
"""
from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import Any, Callable, Optional, Tuple


def _release(_: Any) -> None:
    """Nothing: dropping the argument afterwards, on the worker thread, is the point."""


class DaemonWorker:
    def __init__(self, name: str) -> None:
        self.name = name
        self._queue: "queue.SimpleQueue[Tuple[Callable[..., Any], Tuple[Any, ...], Future]]" = queue.SimpleQueue()
        self._thread: Optional[threading.Thread] = None

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        """Run ``fn(*args)`` after the calls submitted before it; the future gives its result or error."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        future: Future = Future()
        self._queue.put((fn, args, future))
        return future

    def release(self, obj: Any) -> None:
        """Take over ``obj`` and drop it on the worker thread; the caller must hold no other reference."""
        self.submit(_release, obj)

    def _run(self) -> None:
        while True:
            fn, args, future = self._queue.get()
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to whoever reads the future
                future.set_exception(exc)
            del fn, args, future  # destructors of what the call was given run here
