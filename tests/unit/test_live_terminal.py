"""Live output: carriage-return updates, rank selection, folding and start-up noise (no Horovod)."""
from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hvdrun_cli.launch.fold import Folder, parse_rank_selection, rank_label
from hvdrun_cli.launch.noise import is_startup_noise
from hvdrun_cli.launch.output import OutputRouter
from hvdrun_cli.launch.segments import CarriageSplitter
from hvdrun_cli.launch.terminal import CLEAR_LINE, TerminalOptions, TerminalView


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def split(*chunks: bytes, every: float = 0.0):
    splitter = CarriageSplitter(update_every_s=every)
    out = []
    for i, chunk in enumerate(chunks):
        out += splitter.feed(chunk, float(i))
    return out + splitter.close()


def test_progress_bar_updates_are_passed_on_before_its_newline() -> None:
    # tqdm's way: "\r" before each state, "\n" when done
    assert split(b"\r 10%", b"\r 50%", b"\r100%\n") == [(b" 10%", True), (b" 50%", True), (b"100%", False)]
    # the other way: "state\r", then the final line
    assert split(b"10%\r", b"20%\r", b"done\n") == [(b"10%", True), (b"20%", True), (b"done", False)]


def test_plain_lines_wait_for_their_newline_and_crlf_is_a_newline() -> None:
    assert split(b"hal", b"f line\nnext\r\n", b"last") == [(b"half line", False), (b"next", False), (b"last", False)]
    # a read that ends between \r and \n: drawn as an update, then the line replaces it
    assert split(b"next\r", b"\nlast") == [(b"next", True), (b"next", False), (b"last", False)]


def test_updates_are_throttled_but_the_latest_state_still_gets_out() -> None:
    splitter = CarriageSplitter(update_every_s=1.0)
    assert splitter.feed(b"\r1", 0.0) == [(b"1", True)]
    assert splitter.feed(b"\r2\r3", 0.5) == []  # too soon: held
    assert splitter.due_in(0.5) == pytest.approx(0.5)
    assert splitter.tick(1.0) == [(b"3", True)]
    assert splitter.feed(b"\r4\n", 1.1) == [(b"4", False)]  # the final state replaces a pending update


def test_the_supervisor_sends_a_redrawn_line_while_the_rank_still_runs() -> None:
    code = ("import sys, time\n"
            "for i in range(3):\n"
            "    sys.stdout.write(f'\\rstep {i}'); sys.stdout.flush(); time.sleep(0.4)\n"
            "print()\n")
    proc = subprocess.Popen([sys.executable, "-m", "hvdrun_cli.launch.rank_io", "--", sys.executable, "-c", code],
                            env=dict(os.environ, HOROVOD_RANK="0"), stdout=subprocess.PIPE)
    assert proc.stdout is not None
    started = time.monotonic()
    lines = []
    while not lines or lines[-1] != b"[0] step 0\r\n":
        lines.append(proc.stdout.readline())
    first_update_after = time.monotonic() - started
    rest = proc.stdout.read().split(b"\n")
    proc.wait(30)
    assert b"[0] step 2\r" in rest and b"[0] step 2" in rest  # the last update, then the final line
    assert proc.poll() is not None and first_update_after < 30  # seen before the rank ended (1.2 s later)


def test_router_draws_updates_but_logs_only_the_final_line(tmp_path: Path) -> None:
    terminal = io.StringIO()
    router = OutputRouter(str(tmp_path), terminal)
    router.feed(b"[0] 10%\r\n")
    assert terminal.getvalue() == "[0] 10%\r"  # a file gets the update as the rank wrote it
    router.feed(b"[0] 90%\r\n")
    router.feed(b"[1] hello\n")
    router.feed(b"[0] 100% done\n")
    router.close()
    assert terminal.getvalue() == "[0] 10%\r[0] 90%\r\n[1] hello\n[0] 100% done\n"
    assert (tmp_path / "rank.0.log").read_text() == "100% done\n"
    assert 0 in router.last_progress


def test_on_a_terminal_the_update_stays_on_the_last_line(tmp_path: Path) -> None:
    tty = Tty()
    view = TerminalView(tty, TerminalOptions(fold=False), range(2))
    view.rank_update(0, "10%")
    view.rank_line(1, "hello")
    view.rank_line(0, "done")
    assert tty.getvalue() == (f"{CLEAR_LINE}[0] 10%" f"{CLEAR_LINE}[1] hello\n[0] 10%" f"{CLEAR_LINE}[0] done\n")


def test_only_selected_ranks_reach_the_terminal_but_every_rank_is_logged(tmp_path: Path) -> None:
    terminal = io.StringIO()
    router = OutputRouter(str(tmp_path), terminal, options=TerminalOptions(ranks=frozenset({0, 3})), ranks=range(4))
    for rank in range(4):
        router.feed(f"[{rank}] hello from {rank}\n".encode())
        router.feed(f"[{rank}] bar\r\n".encode())
    router.feed(b"[2] hvdjob: rank 2 exited with code 1\n")
    router.close()
    shown = terminal.getvalue()
    assert "hello from 0" in shown and "hello from 3" in shown
    assert "[1]" not in shown and "[2]" not in shown
    for rank in range(4):
        assert f"hello from {rank}" in (tmp_path / f"rank.{rank}.log").read_text()


def test_identical_lines_of_four_ranks_are_folded_and_errors_and_ends_are_not(tmp_path: Path) -> None:
    terminal = io.StringIO()
    router = OutputRouter(str(tmp_path), terminal, ranks=range(4))  # folding is on by default from 4 ranks
    for rank in range(4):
        router.feed(f"[{rank}] loading data\n".encode())
    for rank in range(4):
        router.feed(f"[{rank}] epoch 1 loss 0.{rank}\n".encode())
    router.feed(b"[2] ValueError: bad batch\n")
    router.feed(b"[3] ValueError: bad batch\n")
    router.feed(b"[2] hvdjob: rank 2 exited with code 1\n")
    router.close()
    lines = terminal.getvalue().splitlines()
    assert lines[0] == "[0-3] loading data"  # shown as soon as every rank printed it
    assert lines[1:5] == [f"[{r}] epoch 1 loss 0.{r}" for r in range(4)]
    assert lines[5:] == ["[2] ValueError: bad batch", "[3] ValueError: bad batch", "[2] hvdjob: rank 2 exited with code 1"]
    assert (tmp_path / "rank.1.log").read_text().startswith("loading data\n")


def test_folding_is_off_below_four_ranks_or_when_asked(tmp_path: Path) -> None:
    for ranks, fold in ((range(3), None), (range(8), False)):
        terminal = io.StringIO()
        router = OutputRouter(str(tmp_path), terminal, options=TerminalOptions(fold=fold), ranks=ranks)
        for rank in ranks:
            router.feed(f"[{rank}] same\n".encode())
        router.close()
        assert terminal.getvalue().splitlines() == [f"[{r}] same" for r in ranks]


def test_a_fold_waits_for_its_window_only_when_some_rank_has_not_printed_it() -> None:
    folder = Folder(frozenset(range(4)), window_s=1.0)
    assert folder.add(0, "a", 0.0) == [] and folder.add(1, "a", 0.2) == []
    assert folder.add(1, "a", 0.3) == []  # the same rank twice: a second line
    assert folder.due(0.9) == []
    assert folder.due(1.1) == [((0, 1), "a")]
    assert folder.due(1.4) == [((1,), "a")]


def test_rank_selection_and_labels() -> None:
    assert parse_rank_selection("0,3-5") == {0, 3, 4, 5}
    assert rank_label([0, 1, 2, 3, 7]) == "[0-3,7]"
    for bad in ("", "a", "3-1", "1-", "-2"):
        with pytest.raises(ValueError):
            parse_rank_selection(bad)


def test_tensorflow_cpu_start_up_noise_is_hidden_and_kept_in_the_log(tmp_path: Path) -> None:
    noise = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796119193.834763   14086 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
        "GPU will not be used.",
        "E0000 00:00:1796119197.860592   14086 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
        "Failed call to cuInit: UNKNOWN ERROR (303)",
        "2026-12-01 10:00:00.123456: I tensorflow/core/util/port.cc:153] oneDNN custom operations are on. You may "
        "see slightly different numerical results due to floating-point round-off errors.",
    ]
    assert all(is_startup_noise(line) for line in noise)
    assert not is_startup_noise("E0000 00:00:1796119197.860592   14086 model.cc:52] shapes do not match")
    terminal = io.StringIO()
    router = OutputRouter(str(tmp_path), terminal)
    for line in noise + ["epoch 1"]:
        router.feed(f"[0] {line}\n".encode())
    router.close()
    assert terminal.getvalue() == "[0] epoch 1\n"
    assert (tmp_path / "rank.0.log").read_text().count("\n") == len(noise) + 1


def test_progress_observers_get_each_mark(tmp_path: Path) -> None:
    seen = []
    router = OutputRouter(str(tmp_path), io.StringIO())
    router.add_progress_observer(lambda rank, mark: seen.append((rank, mark.step, mark.fields)))
    router.feed(b"[1] hvdjob: at step 12 loss=0.25 total=100\n")
    router.feed(b"[0] hvdjob: at step 3\n")
    router.close()
    assert seen == [(1, 12, {"loss": "0.25", "total": "100"}), (0, 3, {})]
    assert router.progress_step == {1: 12, 0: 3}
