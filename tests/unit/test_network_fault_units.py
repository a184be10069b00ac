"""The pure parts of network-fault handling: probe miss counting, which hosts are watched, spare hosts."""
from __future__ import annotations

import socket
import threading
import time
from typing import Dict, List

import pytest

from hvdrun_cli.errors import LaunchError
from hvdrun_cli.hosts import Host
from hvdrun_cli.launch.hostwatch import HostWatch, watched_hosts
from hvdrun_cli.launch.launcher_reach import LauncherReachWatch, reach_target
from hvdrun_cli.launch.reach import MissCounter, answers
from hvdrun_cli.launch.spare_hosts import exclusion_line, hosts_without

# -- miss counting --------------------------------------------------------------------------------


def test_a_host_is_lost_only_after_the_set_number_of_misses_in_a_row() -> None:
    counter = MissCounter(misses_to_lose=3)
    outcomes = [counter.record("h", answered, float(t)) for t, answered in enumerate([True, False, False])]
    assert outcomes == [False, False, False]
    assert counter.record("h", False, 3.0) is True  # third miss in a row
    assert counter.silent_for("h", 3.0) == 3.0  # since its last answer at t=0


def test_an_answer_in_between_starts_the_count_again() -> None:
    counter = MissCounter(misses_to_lose=3)
    pattern = [False, False, True, False, False, True, False, False]
    assert not any(counter.record("h", answered, float(t)) for t, answered in enumerate(pattern))
    assert counter.misses("h") == 2
    assert counter.record("h", False, 9.0) is True


def test_lost_is_reported_once_and_hosts_are_counted_apart() -> None:
    counter = MissCounter(misses_to_lose=2)
    assert [counter.record("a", False, t) for t in (0.0, 1.0, 2.0)] == [False, True, False]
    assert counter.misses("b") == 0 and counter.record("b", False, 3.0) is False
    assert not counter.ever_answered("a")
    with pytest.raises(ValueError):
        MissCounter(misses_to_lose=0)


def test_a_refused_connect_counts_as_an_answer_and_an_accepted_one_too() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    open_port = server.getsockname()[1]
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()  # nothing listens there now: the kernel refuses
    try:
        assert answers("127.0.0.1", open_port, 1.0) is True
        assert answers("127.0.0.1", closed_port, 1.0) is True
    finally:
        server.close()


# -- which hosts are watched ----------------------------------------------------------------------


def test_only_other_hosts_of_ssh_launchers_are_watched() -> None:
    layout = ["login", "n1", "n1", "n2"]
    assert watched_hosts("mpi", layout, "login.example.org") == ["n1", "n2"]
    assert watched_hosts("gloo", ["localhost", "n2"], "login") == ["n2"]
    assert watched_hosts("srun", layout, "login") == []  # Slurm watches its nodes itself
    assert watched_hosts("local", ["localhost"], "login") == []
    assert watched_hosts("elastic", layout, "login") == []


def test_host_watch_names_the_host_that_stopped_answering() -> None:
    answering: Dict[str, bool] = {"10.0.0.1": True, "10.0.0.2": True}
    probes: List[str] = []
    lock = threading.Lock()

    def probe(address: str, port: int, timeout_s: float) -> bool:
        with lock:
            probes.append(address)
        return answering[address]

    endpoints = {"a": ("10.0.0.1", 22), "b": ("10.0.0.2", 2222)}
    watch = HostWatch(["a", "b", "a"], probe=probe, every_s=0.01, misses_to_lose=3, endpoint=endpoints.__getitem__)
    watch.start()
    try:
        time.sleep(0.1)
        assert watch.lost() is None
        answering["10.0.0.2"] = False
        deadline = time.monotonic() + 5
        while watch.lost() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        lost = watch.lost()
        assert lost is not None and (lost.name, lost.address, lost.port, lost.misses) == ("b", "10.0.0.2", 2222, 3)
        assert lost.describe().startswith("lost contact with host b: no answer from 10.0.0.2:2222 for ")
        assert [h.name for h in watch.all_lost()] == ["b"]
    finally:
        watch.stop()


def test_a_host_the_probe_never_reached_is_not_declared_lost() -> None:
    # e.g. reached through a ProxyJump: ssh gets there, a direct TCP connect from here does not.
    watch = HostWatch(["behind-jump"], probe=lambda *_: False, every_s=0.005, misses_to_lose=2,
                      endpoint=lambda h: (h, 22))
    watch.start()
    try:
        time.sleep(0.1)
        assert watch.lost() is None
    finally:
        watch.stop()


# -- the rank side: hvdjob's machine gone ---------------------------------------------------------


def test_reach_target_is_read_from_the_environment() -> None:
    assert reach_target({"HVDJOB_LAUNCHER_REACH": "10.213.0.1:22"}) == ("10.213.0.1", 22)
    assert reach_target({"HVDJOB_LAUNCHER_REACH": "[fd00::1]:22"}) == ("fd00::1", 22)
    for bad in ("", "10.0.0.1", "10.0.0.1:x", ":22", "h:0", "h:70000"):
        assert reach_target({"HVDJOB_LAUNCHER_REACH": bad}) is None, bad
    assert reach_target({}) is None


def _reach_watch(outcomes: List[bool]) -> LauncherReachWatch:
    feed = iter(outcomes)
    clock = iter(range(100))
    return LauncherReachWatch("10.0.0.9", 22, on_gone=lambda reason: None, probe=lambda *_: next(feed),
                              misses_to_lose=3, clock=lambda: float(next(clock)))


def test_the_rank_side_stops_after_misses_that_follow_an_answer() -> None:
    watch = _reach_watch([True, False, False, False])
    verdicts = [watch.step() for _ in range(4)]
    assert verdicts[:3] == [None, None, None]
    assert verdicts[3] is not None and "hvdjob's machine 10.0.0.9 has not answered for 3 s" in verdicts[3]


def test_the_rank_side_never_stops_on_a_probe_that_never_got_an_answer() -> None:
    # A firewall that drops the probe from the start must not stop healthy ranks.
    watch = _reach_watch([False] * 10)
    assert [watch.step() for _ in range(10)] == [None] * 10


# -- spare hosts on restart -----------------------------------------------------------------------

HOSTS = (Host("hvdhost1", 2), Host("hvdhost2", 2), Host("hvdhost3", 2))


def test_a_lost_host_is_left_out_when_the_others_have_the_slots() -> None:
    remaining = hosts_without(HOSTS, {"hvdhost2"}, 4)
    assert remaining == (Host("hvdhost1", 2), Host("hvdhost3", 2))
    assert exclusion_line({"hvdhost2"}, HOSTS, remaining, 4) == "leaving out hvdhost2 (lost); ranks on hvdhost1, hvdhost3"


def test_the_line_names_only_the_hosts_the_ranks_land_on() -> None:
    hosts = (Host("a", 4), Host("b", 2), Host("c", 2))
    remaining = hosts_without(hosts, {"b"}, 4)
    assert exclusion_line({"b"}, hosts, remaining, 4) == "leaving out b (lost); ranks on a"


def test_too_few_slots_left_fails_with_one_clear_line() -> None:
    with pytest.raises(LaunchError) as exc:
        hosts_without(HOSTS[:2], {"hvdhost2"}, 4)
    assert str(exc.value) == (
        "cannot restart without hvdhost2 (lost): the other hosts have 2 slots for 4 ranks (left: hvdhost1:2); "
        "list a spare host in resources.hosts or lower resources.np")
    with pytest.raises(LaunchError, match=r"without hvdhost1, hvdhost2 \(lost\): the other hosts have 0 slots .*left: none"):
        hosts_without(HOSTS[:2], {"hvdhost2", "hvdhost1"}, 1)


# -- the restart's spec ---------------------------------------------------------------------------


def _spare_launch(tmp_path, hosts: str, np: int):  # type: ignore[no-untyped-def]
    import io
    import sys

    from hvdrun_cli.launch.runner import Launch
    from hvdrun_cli.launch.tools import Tools
    from hvdrun_cli.spec import load_spec_text

    (tmp_path / "s.py").write_text("print('hi')\n")
    text = f"framework: torch\nname: spare\nscript: s.py\nlauncher: mpi\nrestarts: 1\nresources: {{hosts: {hosts}, np: {np}}}\n"
    spec = load_spec_text(text, "job.yaml", str(tmp_path))
    launch = Launch(spec, run_dir=str(tmp_path / "run"), tools=Tools(python=sys.executable, mpirun="/usr/bin/mpirun",
                                                                     mpi_implementation="openmpi", hostname="login"))
    launch._terminal = io.StringIO()
    return launch


def test_the_restart_plan_leaves_the_lost_host_out_and_keeps_the_size(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from hvdrun_cli.launch.execute import JobResult

    launch = _spare_launch(tmp_path, "[n1:2, n2:2, n3:2]", 4)
    assert [s.hostname for s in launch.plan.layout] == ["n1", "n1", "n2", "n2"]
    launch._note_failure(JobResult(1, "job failed: lost contact with host n2", lost_hosts=("n2",)))
    spec = launch._spec_without_lost_hosts()
    assert spec.resources.hosts == ("n1:2", "n3:2") and spec.resources.np == 4
    assert launch._terminal.getvalue() == "hvdjob: leaving out n2 (lost); ranks on n1, n3\n"
    launch._attempt_spec = spec
    assert [s.hostname for s in launch._plan(1).layout] == ["n1", "n1", "n3", "n3"]


def test_a_failure_without_a_lost_host_restarts_on_the_same_hosts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from hvdrun_cli.launch.execute import JobResult

    launch = _spare_launch(tmp_path, "[n1:2, n2:2]", 4)
    launch._note_failure(JobResult(1, "job failed: rank 1 exited with code 1"))
    assert launch._spec_without_lost_hosts() is launch.spec
    launch._note_failure(JobResult(1, "job failed: lost contact with host n2", lost_hosts=("n2",)))
    with pytest.raises(LaunchError, match=r"^cannot restart without n2 \(lost\): the other hosts have 2 slots for 4"):
        launch._spec_without_lost_hosts()


def test_a_huge_ssh_job_watches_only_its_first_hosts() -> None:
    from hvdrun_cli.launch.hostwatch import MAX_WATCHED_HOSTS

    hosts = [f"node{i}" for i in range(MAX_WATCHED_HOSTS + 50) for _ in range(8)]
    watched = watched_hosts("mpi", hosts, "login")
    assert watched == [f"node{i}" for i in range(MAX_WATCHED_HOSTS)]
