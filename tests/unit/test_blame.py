"""Which failure is named: the first one that is not a consequence of another (fed by hand)."""
from __future__ import annotations

import io
from pathlib import Path

from hvdrun_cli.launch.blame import consequence_of_peer
from hvdrun_cli.launch.output import OutputRouter

SHUT_DOWN = ("horovod.common.exceptions.HorovodInternalError: Horovod has been shut down. This was caused by an "
             "exception on one of the ranks")


def feed(router: OutputRouter, *lines: str) -> None:
    for line in lines:
        router.feed(line.encode() + b"\n")


def test_a_peer_that_failed_because_horovod_shut_down_is_not_blamed_though_it_ended_first(tmp_path: Path) -> None:
    router = OutputRouter(str(tmp_path), io.StringIO())
    feed(router,
         "[0] Traceback (most recent call last):", f"[0] {SHUT_DOWN}", "[0] hvdjob: rank 0 exited with code 1",
         "[1] Traceback (most recent call last):", "[1] RuntimeError: mine", "[1] hvdjob: rank 1 exited with code 3")
    verdict = router.failure_verdict()
    router.close()
    assert verdict is not None and verdict.first.rank == 1 and verdict.first.exit_code == 3
    assert [(e.rank, why) for e, why in verdict.secondary] == [(0, "a consequence: Horovod has been shut down")]


def test_a_rank_stopped_by_the_launcher_comes_after_the_rank_that_failed(tmp_path: Path) -> None:
    router = OutputRouter(str(tmp_path), io.StringIO())
    feed(router, "[0] hvdjob: rank 0 was killed by SIGTERM", "[1] hvdjob: rank 1 exited with code 2")
    assert router.first_failure().rank == 1
    router.close()


def test_when_every_failure_is_a_consequence_the_first_seen_is_named(tmp_path: Path) -> None:
    router = OutputRouter(str(tmp_path), io.StringIO())
    feed(router, "[1] RuntimeError: Connection closed by peer [127.0.0.1]:4242", "[1] hvdjob: rank 1 exited with code 1",
         f"[0] {SHUT_DOWN}", "[0] hvdjob: rank 0 exited with code 1")
    assert router.first_failure().rank == 1
    router.close()


def test_a_rank_killed_by_sigkill_is_a_failure_of_its_own(tmp_path: Path) -> None:
    """The OOM killer's SIGKILL is a cause: its peers then lose their Gloo connections."""
    router = OutputRouter(str(tmp_path), io.StringIO())
    feed(router, "[0] RuntimeError: [pair.cc:598] Connection reset by peer", "[0] hvdjob: rank 0 exited with code 1",
         "[1] hvdjob: rank 1 was killed by SIGKILL")
    assert router.first_failure().rank == 1
    router.close()


def test_consequence_patterns() -> None:
    assert consequence_of_peer(["x", SHUT_DOWN]) == "Horovod has been shut down"
    assert consequence_of_peer(["ValueError: bad shape"]) is None


def test_gloos_send_and_recv_timeouts_are_consequences_of_a_silent_peer() -> None:
    for op in ("send", "recv"):
        line = f"RuntimeError: [unbound_buffer.cc:133] Timed out waiting 30000ms for {op} operation to complete"
        assert consequence_of_peer([line]) == f"Timed out waiting 30000ms for {op} operation"
