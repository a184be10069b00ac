"""Work a rank hands off its training thread: destructors that wait.

:class:`DaemonWorker` drops released objects, one at a time, in order, on a daemon thread. Daemon,
unlike ``concurrent.futures``' workers, which the interpreter joins at exit before Horovod's own exit
handler shuts Horovod down: a destructor left waiting would then hang the exit.

The Keras loop drops finished ``tf.data`` iterators there: an iterator's destructor waits for
tf.data's autotuning thread to stop, which can take a few hundred milliseconds (measured here: 1 in 4
took 0.37-0.38 s after an epoch of 12 ms steps, about 1 ms with autotuning off). Deleted where the
epoch ends, it stalled one rank while every other rank waited for it in the epoch's allreduce:
0.44-0.49 s at about one epoch end in two on the managed Keras benchmark job.
"""
from __future__ import annotations

import queue
import threading
from typing import Any, Optional


class DaemonWorker:
    """Holds the last reference to each released object until its daemon thread drops it, in order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._queue: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self._thread: Optional[threading.Thread] = None

    def release(self, obj: Any) -> None:
        """Take over ``obj`` and drop it on the worker thread; the caller must hold no other reference."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        self._queue.put(obj)

    def _run(self) -> None:
        while True:
            obj = self._queue.get()
            del obj  # its destructor runs here, off the training thread
