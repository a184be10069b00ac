"""Waiting for a Horovod PyTorch operation while leaving the CPU to Horovod's own thread.

Horovod 0.28's ``synchronize`` (inside every ``DistributedOptimizer.step()`` and ``hvd.allreduce``)
waits in C++ in a loop of poll and ``sched_yield``. The operation itself runs on Horovod's
background thread, on the same CPUs as the training thread (one core per rank under hvdjob's
placement), and the yielding loop keeps taking turns on that core while the background thread
copies and reduces. hvdjob replaces the wait with poll and a 50 µs sleep, so the training thread
is off the CPU until the operation is done; then Horovod's own wait runs and returns at once, with
Horovod's result and errors. Measured in the same two processes, alternating epochs, np=2, ranks
bound (the numbers are in the README's Performance section).

It applies to managed jobs and to a user's own script alike: the worker installs an import hook,
so Horovod's extension is patched the moment anything imports it, and nothing is imported early.
``HVDJOB_HOROVOD_WAIT=horovod`` keeps Horovod's own wait.

A wait longer than ``SLEEP_AT_MOST_S`` is no step's allreduce but a straggler or a hang, and goes
back to Horovod's own wait: its busy CPU is how hvdjob's watchdog (``launch/watchdog.py``) tells a
rank waiting in a collective from the rank at fault, which sleeps or blocks.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
import time
from types import ModuleType
from typing import Any, Callable, Mapping, Optional, Sequence

from hvdrun_cli.contract import ENV_HOROVOD_WAIT

EXTENSION = "horovod.torch.mpi_lib_v2"  # the compiled module horovod.torch.mpi_ops calls
SLEEP_S = 50e-6
SLEEP_AT_MOST_S = 1.0
KEEP_HOROVODS = "horovod"
_PATCHED = "_hvdjob_sleeping_wait"


def sleeping_wait(poll: Callable[[int], int], wait_and_clear: Callable[[int], Any],
                  sleep: Callable[[float], None] = time.sleep,
                  clock: Callable[[], float] = time.monotonic) -> Callable[[int], Any]:
    """``wait_and_clear`` that first sleeps until ``poll`` says the operation is done (for at most
    ``SLEEP_AT_MOST_S``; then Horovod's own wait takes over)."""

    def wait(handle: int) -> Any:
        give_up = clock() + SLEEP_AT_MOST_S
        while not poll(handle) and clock() < give_up:
            sleep(SLEEP_S)
        return wait_and_clear(handle)

    setattr(wait, _PATCHED, True)
    return wait


def patch(extension: ModuleType) -> bool:
    """Give Horovod's PyTorch extension the sleeping wait (once); False if it lacks the two calls."""
    poll = getattr(extension, "horovod_torch_poll", None)
    original = getattr(extension, "horovod_torch_wait_and_clear", None)
    if poll is None or original is None or getattr(original, _PATCHED, False):
        return False
    extension.horovod_torch_wait_and_clear = sleeping_wait(poll, original)
    return True


class _PatchingLoader(importlib.abc.Loader):
    """Loads the extension with its own loader, then patches it."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Optional[ModuleType]:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        patch(module)


class _PatchOnImport(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Optional[Sequence[str]], target: Optional[ModuleType] = None
                  ) -> Optional[importlib.machinery.ModuleSpec]:
        if fullname != EXTENSION:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = _PatchingLoader(spec.loader)
        return spec


def install(environ: Mapping[str, str] = os.environ) -> bool:
    """Patch Horovod's extension now if it is loaded, else when it is first imported."""
    if environ.get(ENV_HOROVOD_WAIT, "").strip().lower() == KEEP_HOROVODS:
        return False
    loaded = sys.modules.get(EXTENSION)
    if loaded is not None:
        patch(loaded)
    elif not any(isinstance(finder, _PatchOnImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport())
    return True
