"""The end of a run stops Horovod's timeline, so its writer drains what is still queued (pure: a fake module)."""
import sys
import types

import pytest

from hvdrun_cli.adapters.timeline import complete_timeline


def fake_horovod(initialized: bool = True, fails: bool = False) -> types.ModuleType:
    module = types.ModuleType("horovod.torch")
    module.stopped = 0  # type: ignore[attr-defined]

    def stop_timeline() -> None:
        if fails:
            raise ValueError("Horovod has not been initialized; use hvd.init().")
        module.stopped += 1  # type: ignore[attr-defined]

    module.is_initialized = lambda: initialized  # type: ignore[attr-defined]
    module.stop_timeline = stop_timeline  # type: ignore[attr-defined]
    return module


@pytest.fixture
def horovod(monkeypatch: pytest.MonkeyPatch):
    def install(**kwargs: bool) -> types.ModuleType:
        module = fake_horovod(**kwargs)
        monkeypatch.setitem(sys.modules, "horovod.torch", module)
        monkeypatch.delitem(sys.modules, "horovod.tensorflow", raising=False)
        return module
    return install


def test_a_run_with_a_timeline_stops_it_once(horovod) -> None:
    module = horovod()
    assert complete_timeline({"HOROVOD_TIMELINE": "/runs/t.json"}) is True
    assert module.stopped == 1


def test_without_a_timeline_nothing_is_called(horovod) -> None:
    module = horovod()
    assert complete_timeline({}) is False and module.stopped == 0


@pytest.mark.parametrize("kwargs", [{"initialized": False}, {"fails": True}])
def test_horovod_already_shut_down_is_left_alone(horovod, kwargs) -> None:
    module = horovod(**kwargs)
    assert complete_timeline({"HOROVOD_TIMELINE": "/runs/t.json"}) is False and module.stopped == 0
