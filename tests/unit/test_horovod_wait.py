"""hvdjob's wait for a Horovod PyTorch operation: sleep until Horovod says it is done, then Horovod's own wait."""
from __future__ import annotations

import types

import pytest

from hvdrun_cli.adapters import horovod_wait


def test_the_wait_sleeps_until_the_operation_is_done_then_returns_horovods_own_result() -> None:
    polls, sleeps, waited = iter([0, 0, 0, 1]), [], []

    def wait_and_clear(handle: int) -> str:
        waited.append(handle)
        return "result"

    wait = horovod_wait.sleeping_wait(lambda handle: next(polls), wait_and_clear, sleeps.append)
    assert wait(7) == "result"
    assert waited == [7] and sleeps == [horovod_wait.SLEEP_S] * 3


def test_a_long_wait_goes_back_to_horovods_own_wait_for_the_watchdog_to_see() -> None:
    """Past SLEEP_AT_MOST_S the rank waits in Horovod's busy loop: the watchdog's sign of a rank that only waits."""
    now, sleeps, waited = [0.0], [], []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += 0.25

    wait = horovod_wait.sleeping_wait(lambda handle: 0, lambda handle: waited.append(handle), sleep, lambda: now[0])
    wait(9)
    assert waited == [9]  # handed over, still not done: Horovod's own wait blocks until it is
    assert len(sleeps) == int(horovod_wait.SLEEP_AT_MOST_S / 0.25)


def test_horovods_errors_reach_the_caller_unchanged() -> None:
    def failing(handle: int) -> None:
        raise RuntimeError("Horovod has been shut down")

    with pytest.raises(RuntimeError, match="shut down"):
        horovod_wait.sleeping_wait(lambda handle: 1, failing)(3)


def test_the_extension_is_patched_once_and_left_alone_without_the_two_calls() -> None:
    original = lambda handle: handle  # noqa: E731
    extension = types.ModuleType("ext")
    extension.horovod_torch_poll = lambda handle: 1
    extension.horovod_torch_wait_and_clear = original
    assert horovod_wait.patch(extension)
    patched = extension.horovod_torch_wait_and_clear
    assert patched is not original and patched(5) == 5
    assert not horovod_wait.patch(extension) and extension.horovod_torch_wait_and_clear is patched
    assert not horovod_wait.patch(types.ModuleType("other"))


def test_the_environment_can_keep_horovods_own_wait() -> None:
    assert not horovod_wait.install({"HVDJOB_HOROVOD_WAIT": "horovod"})
