"""Pure parts of the Keras benchmark section: TF_CONFIG, worker command lines and environment,
the rate after warm-up, and that a MultiWorkerMirroredStrategy worker never outlives a failed peer."""
from __future__ import annotations

import json
import os
import sys
import time

import pytest

from benchmarks import mwms
from benchmarks.launch import BenchmarkFailed
from benchmarks.training_keras import launchers_used, optional_ratio_row, train_marks
from hvdrun_cli.bench.stats import rate_after


def test_tf_config_names_every_worker_and_this_ones_index() -> None:
    configs = [json.loads(mwms.tf_config([41001, 41002], i)) for i in range(2)]
    for index, config in enumerate(configs):
        assert config == {"cluster": {"worker": ["127.0.0.1:41001", "127.0.0.1:41002"]},
                          "task": {"type": "worker", "index": index}}


@pytest.mark.parametrize("ports,index", [([41001, 41002], 2), ([41001, 41002], -1), ([41001, 41001], 0)])
def test_tf_config_refuses_a_cluster_that_cannot_form(ports: list, index: int) -> None:
    with pytest.raises(ValueError):
        mwms.tf_config(ports, index)


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = mwms.free_ports(2)
    assert len(set(ports)) == 2 and all(1024 <= p < 65536 for p in ports)


def test_worker_environment_and_command_line() -> None:
    env = mwms.worker_env({"PATH": "/bin", "TF_CONFIG": "stale"}, '{"x": 1}', intra=1, inter=1)
    assert env["TF_CONFIG"] == '{"x": 1}' and env["PATH"] == "/bin"
    assert (env["TF_USE_LEGACY_KERAS"], env["OMP_NUM_THREADS"], env["TF_NUM_INTRAOP_THREADS"],
            env["TF_NUM_INTEROP_THREADS"]) == ("1", "1", "1", "1")
    assert mwms.worker_argv("w.py", "work.json", "out.json", "done", 1, 2) == [
        sys.executable, "w.py", "--workload", "work.json", "--out", "out.json", "--done-dir", "done",
        "--intra-op-threads", "1", "--inter-op-threads", "2"]


def test_rate_after_leaves_the_first_steps_out() -> None:
    marks = [(1, 100.0), (50, 120.0), (100, 121.0), (200, 123.0)]  # 20 s tracing, then 50 steps/s
    assert rate_after(marks, 50, 128) == pytest.approx(150 * 128 / 3.0)
    assert rate_after(marks, 60, 128) == pytest.approx(100 * 128 / 2.0)  # from the next mark on
    assert rate_after(marks, 200, 128) is None and rate_after([], 50, 128) is None


def test_managed_progress_windows_become_marks() -> None:
    lines = ['{"kind": "train", "step": 50, "time": 10.0}', "",
             '{"kind": "validation", "step": 50, "time": 10.5}', '{"kind": "train", "step": 100, "time": 12.0}']
    assert train_marks(lines) == [(50, 10.0), (100, 12.0)]


def test_ratio_row_skips_repeats_without_a_value() -> None:
    assert optional_ratio_row("a ÷ b", [2.0, None, 3.0], [1.0, 1.0, 1.0]) == ("a ÷ b", "ratio", "2.00 / 2.50 / 3.00")
    assert optional_ratio_row("a ÷ b", [None], [1.0])[2] == "n/a"


def _sleeper(seconds: float, pid_file: str = "") -> list:
    note = f"open({pid_file!r}, 'w').write(str(os.getpid())); " if pid_file else ""
    return [sys.executable, "-c", f"import os, time; {note}time.sleep({seconds})"]


def _gone(pid: int) -> bool:
    return not os.path.exists(f"/proc/{pid}")


def test_a_failed_worker_stops_its_hanging_peer(tmp_path) -> None:
    logs = [str(tmp_path / "w0.log"), str(tmp_path / "w1.log")]
    pid_file = str(tmp_path / "peer.pid")
    fail_later = "import os, sys, time\nwhile not os.path.exists(%r): time.sleep(0.05)\nprint('boom'); sys.exit(3)"
    argvs = [[sys.executable, "-c", fail_later % pid_file], _sleeper(60, pid_file)]
    started = time.monotonic()
    with pytest.raises(BenchmarkFailed) as info:
        mwms.run_group(argvs, [{}, {}], logs, timeout_s=60)
    assert time.monotonic() - started < 20  # not the sleeper's 60 s
    assert "worker 0 exited with 3" in str(info.value) and "boom" in str(info.value)
    assert _gone(int(open(pid_file).read()))


def test_workers_past_the_deadline_are_stopped(tmp_path) -> None:
    logs = [str(tmp_path / "w0.log"), str(tmp_path / "w1.log")]
    started = time.monotonic()
    with pytest.raises(BenchmarkFailed, match="still running after 1 s"):
        mwms.run_group([_sleeper(60), _sleeper(60)], [{}, {}], logs, timeout_s=1)
    assert time.monotonic() - started < 20


def test_a_peer_that_hangs_after_the_other_finished_is_stopped(tmp_path) -> None:
    logs = [str(tmp_path / "w0.log"), str(tmp_path / "w1.log")]
    with pytest.raises(BenchmarkFailed, match="did not within 1 s"):
        mwms.run_group([[sys.executable, "-c", "pass"], _sleeper(60)], [{}, {}], logs, timeout_s=60,
                       peer_grace_s=1)


def test_workers_that_finish_give_the_wall_time(tmp_path) -> None:
    logs = [str(tmp_path / "w0.log"), str(tmp_path / "w1.log")]
    timed = mwms.run_group([[sys.executable, "-c", "pass"]] * 2, [{}, {}], logs, timeout_s=60)
    assert timed.wall_s > 0 and timed.launch_unix_time <= time.time()


def test_the_note_names_the_launcher_each_hvdjob_run_used(tmp_path) -> None:
    from hvdrun_cli.bench.samples import RunSample

    def sample(name: str, launcher: str) -> RunSample:
        run_dir = tmp_path / name
        run_dir.mkdir()
        if launcher:
            (run_dir / "plan.json").write_text(json.dumps({"launcher": launcher}))
        return RunSample(2, 0, 1.0, 0.0, 1.0, None, 1.0, str(run_dir))

    assert launchers_used([sample("a", "mpi"), sample("b", "local"), sample("c", "mpi")]) == "local, mpi"
    assert launchers_used([sample("d", "")]) == "?"
