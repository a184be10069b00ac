"""A failing script's traceback starts at the user's code on the terminal; the rank log keeps it all."""
from __future__ import annotations

import io
import sys
import textwrap
from pathlib import Path

import pytest

from hvdrun_cli.adapters.script_mode import run_script
from hvdrun_cli.launch.output import LOG_ONLY_MARK, OutputRouter

SCRIPT = textwrap.dedent("""\
    def load(path):
        raise FileNotFoundError(f"no data at {path}")

    def main():
        try:
            load("/data/train")
        except FileNotFoundError as exc:
            raise RuntimeError("cannot start training") from exc

    main()
    """)


def _run_failing(tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> str:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    monkeypatch.setattr(sys, "path", list(sys.path))
    with pytest.raises(SystemExit) as stop:
        run_script(str(script), [])
    assert stop.value.code == 1  # what python exits with for an uncaught exception
    return capsys.readouterr().err


def test_hvdjob_frames_are_marked_for_the_log_and_the_users_are_not(tmp_path, capsys, monkeypatch) -> None:
    err = _run_failing(tmp_path, capsys, monkeypatch)
    hidden = [line[len(LOG_ONLY_MARK):] for line in err.splitlines() if line.startswith(LOG_ONLY_MARK)]
    shown = [line for line in err.splitlines() if not line.startswith(LOG_ONLY_MARK)]
    assert any("script_mode.py" in line for line in hidden)
    assert any("runpy" in line for line in hidden)
    assert not any("script_mode.py" in line or "runpy" in line for line in shown)
    # Both exceptions of the chain, each starting at the script's own frames, in Python's order.
    assert shown[0] == "Traceback (most recent call last):"
    assert f'File "{tmp_path / "train.py"}", line 6, in main' in shown[1]
    assert shown[-1] == "RuntimeError: cannot start training"
    assert "FileNotFoundError: no data at /data/train" in shown
    assert "The above exception was the direct cause of the following exception:" in shown
    second = shown.index("The above exception was the direct cause of the following exception:") + 2
    assert shown[second] == "Traceback (most recent call last):"
    assert 'line 10, in <module>' in shown[second + 1]


def test_the_router_shows_the_trimmed_traceback_and_logs_the_full_one(tmp_path, capsys, monkeypatch) -> None:
    err = _run_failing(tmp_path, capsys, monkeypatch)
    terminal = io.StringIO()
    router = OutputRouter(str(tmp_path), terminal)
    for line in err.splitlines():
        router.feed(f"[0] {line}\n".encode())
    router.close()
    log = (tmp_path / "rank.0.log").read_text()
    assert "script_mode.py" in log and LOG_ONLY_MARK not in log
    assert "script_mode.py" not in terminal.getvalue() and "runpy" not in terminal.getvalue()
    assert "[0] RuntimeError: cannot start training" in terminal.getvalue()
    assert "script_mode.py" not in "\n".join(router.tail(0, 40))  # the failure message's tail is the user's


def test_an_error_in_hvdjob_itself_hides_nothing() -> None:
    from hvdrun_cli.adapters import script_mode

    try:
        exec(compile("raise ValueError('broken runner')", script_mode.__file__, "exec"))
    except ValueError as exc:
        error = exc.with_traceback(exc.__traceback__.tb_next)  # only the "runner" frame is left
    lines = script_mode.traceback_lines(error)
    assert lines[-1] == (False, "ValueError: broken runner")
    assert any("script_mode.py" in line for _, line in lines)
    assert not any(hidden for hidden, _ in lines)
