"""A complete Horovod timeline (``horovod.timeline``) at the end of a run.

Horovod 0.28 writes its timeline from a background thread that takes records off a queue; at shutdown
that thread stops without draining the queue, so the records still queued are lost, and on a busy
machine that can be most of a short run (a run's file ended inside its first gradient step). Stopping
the timeline first (``hvd.stop_timeline``) makes the writer drain the queue and close the file; it
blocks until that is done. Only the coordinator (rank 0) writes, and only it waits.
"""
from __future__ import annotations

import os
import sys
from typing import Mapping

TIMELINE_ENV = "HOROVOD_TIMELINE"
HOROVOD_MODULES = ("horovod.torch", "horovod.tensorflow")


def complete_timeline(environ: Mapping[str, str] = os.environ) -> bool:
    """Stop Horovod's timeline so its file holds every record; True when one was stopped."""
    if not environ.get(TIMELINE_ENV):
        return False
    for name in HOROVOD_MODULES:
        module = sys.modules.get(name)
        if module is None:
            continue
        try:
            if not module.is_initialized():
                return False
            module.stop_timeline()
        except (ValueError, RuntimeError, AttributeError):
            return False  # Horovod already shut down (a script called hvd.shutdown()), or too old
        return True
    return False
