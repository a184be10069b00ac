"""The one training engine, driven by a fake framework: what a user of managed training would notice.

Steps and epochs, progress records, interval checkpoints, stop agreement, max_steps, resume
positions (without reading finished batches), finished jobs, uneven ranks (join instead of a hang)
and elastic commit cadence; no Horovod, torch or TensorFlow involved.
"""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Dict, List

import pytest

from hvdrun_cli.adapters import engine as engine_module
from hvdrun_cli.adapters.base import LaunchInfo, StopRequested
from hvdrun_cli.adapters.counting import ElasticCounting, FixedCounting
from hvdrun_cli.adapters.engine import Engine
from hvdrun_cli.spec.model import CheckpointSpec, ElasticSpec, JobSpec, TrainSpec
from tests.unit.fake_backend import FakeBackend, FakeData, FakeWorld


class Fixed(FixedCounting):
    stop_signals = ()  # tests request stops directly; no process-wide signal handlers


class Elastic(ElasticCounting):
    stop_signals = ()


def job(tmp_path: Path, interval: int = 1000, resume: str = "auto", **train: Any) -> JobSpec:
    settings: Dict[str, Any] = {"epochs": 3, "batch_size": 4, "log_interval": 2, "validate": True, "lr": 0.1,
                                "lr_scaling": "none", "momentum": 0.0, **train}
    return JobSpec(framework="torch", name="fake", train=TrainSpec(**settings), run_root=str(tmp_path),
                   checkpoint=CheckpointSpec(dir=str(tmp_path / "ckpt"), interval_steps=interval, keep=0,
                                             resume=resume))


def run(spec: JobSpec, backend: FakeBackend, run_dir: Path, counting: Any = None) -> Dict[str, Any]:
    launch = LaunchInfo(str(run_dir), 0, 1, 0.0)
    engine = Engine(spec, backend.init(launch), launch, backend, counting or Fixed())
    backend.engine = engine  # type: ignore[attr-defined]
    return engine.run()


def metrics(run_dir: Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def checkpoints(tmp_path: Path) -> List[int]:
    return sorted(int(p.stem.split("-")[1]) for p in (tmp_path / "ckpt").glob("ckpt-*.json"))


def test_every_batch_of_every_epoch_is_trained_once_and_reported(tmp_path: Path) -> None:
    backend = FakeBackend(FakeData([5]))
    summary = run(job(tmp_path), backend, tmp_path / "run")
    assert backend.read == [(e, i) for e in range(3) for i in range(5)]
    assert (summary["status"], summary["steps"], summary["epochs"], summary["samples"]) == ("completed", 15, 3.0, 60)
    assert summary["batches_per_rank"] == [15] and summary["batch_imbalance"] == 0.0
    records = metrics(tmp_path / "run")
    assert [r["step"] for r in records if r["kind"] == "train"] == [2, 4, 6, 8, 10, 12, 14]
    assert [r["epoch"] for r in records if r["kind"] == "validation"] == [1, 2, 3]
    train = [r for r in records if r["kind"] == "train"]
    assert all(r["step_time_s"] is not None and r["step_time_s"] >= 0 for r in train)
    assert summary["val_accuracy"] == pytest.approx(0.9) and summary["train_loss"] == pytest.approx(0.5)
    assert checkpoints(tmp_path) == [15]  # only the final one (interval 1000)


def test_max_steps_stops_mid_epoch_with_a_checkpoint_and_a_final_validation(tmp_path: Path) -> None:
    backend = FakeBackend(FakeData([5]))
    summary = run(job(tmp_path, max_steps=7), backend, tmp_path / "run")
    assert (summary["status"], summary["steps"]) == ("max_steps", 7)
    assert len(backend.read) == 7
    assert checkpoints(tmp_path) == [7]
    validations = [r for r in metrics(tmp_path / "run") if r["kind"] == "validation"]
    assert [r["step"] for r in validations] == [5, 7]


def test_interval_checkpoints_land_on_multiples_of_the_interval(tmp_path: Path) -> None:
    run(job(tmp_path, interval=4), FakeBackend(FakeData([5])), tmp_path / "run")
    assert checkpoints(tmp_path) == [4, 8, 12, 15]


def test_a_stop_request_is_agreed_at_the_next_check_and_saves_there(tmp_path: Path) -> None:
    backend = FakeBackend(FakeData([10]))
    backend.on_batch = lambda n: backend.engine.stop.request("test") if n == 13 else None  # type: ignore
    with pytest.raises(StopRequested) as stopped:
        run(job(tmp_path, epochs=5), backend, tmp_path / "run")
    summary = stopped.value.summary
    assert (summary["status"], summary["steps"]) == ("stopped", 20)  # checked every 10 steps
    assert len(backend.read) == 20
    assert checkpoints(tmp_path) == [20]
    sidecar = json.loads((tmp_path / "ckpt" / "ckpt-000000020.json").read_text())
    assert sidecar["position"] == {"epoch": 2, "step_in_epoch": 0, "global_step": 20}


def test_resume_continues_at_the_next_unfinished_batch_and_ends_like_an_uninterrupted_run(tmp_path: Path) -> None:
    whole = FakeBackend(FakeData([5]))
    run(job(tmp_path / "a"), whole, tmp_path / "a" / "run")

    first = FakeBackend(FakeData([5]))
    run(job(tmp_path / "b", max_steps=7), first, tmp_path / "b" / "run1")
    second = FakeBackend(FakeData([5]))
    summary = run(job(tmp_path / "b"), second, tmp_path / "b" / "run2")
    assert second.read[0] == (1, 2)  # step 7 = epoch 2, batch 3: the finished batches are not read again
    assert first.read + second.read == whole.read
    assert second.weight == whole.weight and second.lrs == whole.lrs[7:]
    assert second.rng == whole.rng  # the RNG state came back from the checkpoint
    assert (summary["resumed_from_step"], summary["steps"], summary["status"]) == (7, 15, "completed")


def test_a_finished_job_says_so_and_trains_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run(job(tmp_path), FakeBackend(FakeData([5])), tmp_path / "run1")
    again = FakeBackend(FakeData([5]))
    summary = run(job(tmp_path), again, tmp_path / "run2")
    assert again.read == []
    assert summary["status"] == "already_complete" and summary["steps"] == 15
    out = capsys.readouterr().out
    assert "job fake is already complete" in out and "at step 15 (all 3 epochs)" in out
    assert "--set checkpoint.resume=never" in out and "resumed from" not in out.split("already complete")[-1]


def test_backward_passes_group_batches_into_steps(tmp_path: Path) -> None:
    backend = FakeBackend(FakeData([5]), passes=2)
    summary = run(job(tmp_path), backend, tmp_path / "run")
    assert summary["steps"] == 9 and summary["steps_per_epoch"] == 3 and len(backend.read) == 15


def run_ranks(specs: List[JobSpec], backends: List[FakeBackend], tmp_path: Path,
              counting: Any = Fixed) -> List[Any]:
    """Every rank in its own thread; an engine that hangs fails the test through FakeWorld's timeout."""
    results: List[Any] = [None] * len(backends)

    def body(rank: int) -> None:
        try:
            results[rank] = run(specs[rank], backends[rank], tmp_path / "run", counting())
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            results[rank] = exc

    threads = [threading.Thread(target=body, args=(r,)) for r in range(len(backends))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads), "a rank hung"
    return results


@pytest.mark.parametrize("known_length", [True, False])
def test_ranks_with_different_batch_counts_join_instead_of_hanging(tmp_path: Path, known_length: bool,
                                                                   capsys: pytest.CaptureFixture) -> None:
    world = FakeWorld(2)
    data = FakeData([5, 3], known_length=known_length)
    backends = [FakeBackend(data, world, rank) for rank in range(2)]
    spec = job(tmp_path, interval=4, epochs=2, log_interval=2)
    results = run_ranks([spec, spec], backends, tmp_path)
    for result in results:
        assert isinstance(result, dict), result
    summary = results[0]
    assert summary["batches_per_rank"] == [10, 6] and summary["steps"] == 10
    assert summary["batch_imbalance"] == pytest.approx(10 / 6 - 1) and summary["uneven_epochs"] == 2
    assert summary["samples"] == 16 * 4
    assert [b.joins for b in backends] == [3, 3]  # after each uneven epoch and the final barrier
    # Rank 1 stopped updating when it ran out; after each uneven epoch it takes the state of rank 0.
    assert backends[0].weight == backends[1].weight
    # Interval saves need every rank: one due while rank 1 had run out is saved at the epoch end instead
    # (step 5 for step 4); with lengths known in advance, saves while every rank trains stay on time (8).
    assert checkpoints(tmp_path) == ([5, 8, 10] if known_length else [5, 10])
    assert "batches per rank: rank 0: 10, rank 1: 6 (imbalance 66.7%" in capsys.readouterr().out


def test_a_stop_on_the_longer_rank_after_the_other_joined_stops_both(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "STOP_CHECK_EVERY", 2)
    world = FakeWorld(2)
    data = FakeData([9, 2])
    backends = [FakeBackend(data, world, rank) for rank in range(2)]
    backends[0].on_batch = lambda n: backends[0].engine.stop.request("test") if n == 5 else None  # type: ignore
    spec = job(tmp_path, epochs=3, log_interval=100)
    results = run_ranks([spec, spec], backends, tmp_path)
    assert all(isinstance(r, StopRequested) for r in results), results
    assert results[0].summary["steps"] == 6 and results[0].summary["status"] == "stopped"
    sidecar = json.loads((tmp_path / "ckpt" / "ckpt-000000006.json").read_text())
    assert sidecar["rank_batches_in_epoch"] == [6, 2]

    # The resume picks each rank up after its own batches: rank 0 at batch 7, rank 1 has none left.
    world = FakeWorld(2)
    resumed = [FakeBackend(data, world, rank) for rank in range(2)]
    results = run_ranks([job(tmp_path, epochs=1, log_interval=100)] * 2, resumed, tmp_path)
    assert all(isinstance(r, dict) for r in results), results
    assert resumed[0].read == [(0, 6), (0, 7), (0, 8)] and resumed[1].read == []


class FakeElasticState:
    def __init__(self, **counters: int) -> None:
        self.__dict__.update(counters)
        self.commits: List[int] = []
        self.callbacks: List[Any] = []

    def register_reset_callbacks(self, callbacks: List[Any]) -> None:
        self.callbacks += callbacks

    def commit(self) -> None:
        self.commits.append(self.step)


class ElasticFake(FakeBackend):
    def elastic_state(self, **counters: int) -> Any:
        self.state = FakeElasticState(**counters)
        return self.state

    def elastic_run(self, fn: Any) -> Any:
        return fn

    def elastic_world(self) -> Any:
        return (0, 1, 0, 1)


def test_elastic_commits_every_log_interval_and_at_each_epoch_end(tmp_path: Path) -> None:
    backend = ElasticFake(FakeData([5]))
    spec = job(tmp_path, epochs=2, log_interval=3)
    spec = JobSpec(**{**spec.__dict__, "elastic": ElasticSpec()})
    summary = run(spec, backend, tmp_path / "run", Elastic())
    assert backend.state.commits == [3, 5, 6, 9, 10]
    assert summary["steps"] == 10 and summary["epochs"] == 2.0 and summary["elastic"]["resets"] == 0


class OverlappingBackend(FakeBackend):
    """Like the PyTorch backend: a started allreduce is read later (the fake world completes it at once)."""

    overlaps_collectives = True

    def allreduce_start(self, values, op, name):  # type: ignore[no-untyped-def]
        self.started = getattr(self, "started", 0) + 1
        return ("pending", self.allreduce(values, op, name))

    def allreduce_result(self, pending):  # type: ignore[no-untyped-def]
        assert pending[0] == "pending"
        return pending[1]


@pytest.mark.parametrize("batches, stopped_at", [
    (12, 8),  # asked at batch 5: sent with the check at step 6, read at the check at step 8
    (7, 7),   # the epoch ends first: its end reads the check in flight, so the stop is not carried over
])
def test_an_overlapped_stop_check_is_honoured_at_the_next_check_or_the_epochs_end(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batches: int, stopped_at: int) -> None:
    monkeypatch.setattr(engine_module, "STOP_CHECK_EVERY", 2)
    world = FakeWorld(2)
    data = FakeData([batches, batches])
    backends = [OverlappingBackend(data, world, rank) for rank in range(2)]
    backends[1].on_batch = lambda n: backends[1].engine.stop.request("test") if n == 5 else None  # type: ignore
    results = run_ranks([job(tmp_path, epochs=3, log_interval=100)] * 2, backends, tmp_path)
    assert all(isinstance(r, StopRequested) for r in results), results
    assert [r.summary["steps"] for r in results] == [stopped_at, stopped_at]  # type: ignore[union-attr]
    assert (tmp_path / "ckpt" / f"ckpt-{stopped_at:09d}.json").exists()
    assert all(b.started >= 3 for b in backends)  # the checks did go through allreduce_start
    assert world.log.count("hvdjob.stop") == sum(1 for s in range(2, stopped_at + 1, 2))


def _window_records(run_dir: Path) -> List[tuple]:
    return [(r["epoch"], r["step"], r["loss"], r["accuracy"], r["lr"]) for r in metrics(run_dir) if r["kind"] == "train"]


@pytest.mark.parametrize("batches", [[7, 7], [7, 4]])
def test_an_overlapped_metric_window_reports_what_a_waited_for_one_does(tmp_path: Path, batches: List[int]) -> None:
    """The window's sums travel with the next step's gradients; every line and the summary are unchanged."""
    outcomes = {}
    for kind in (FakeBackend, OverlappingBackend):
        world, data = FakeWorld(2), FakeData(batches)
        backends = [kind(data, world, rank) for rank in range(2)]
        where = tmp_path / kind.__name__
        results = run_ranks([job(where, epochs=2, log_interval=3)] * 2, backends, where)
        assert all(isinstance(r, dict) for r in results), results
        outcomes[kind] = (_window_records(where / "run"), {k: results[0][k] for k in ("steps", "samples", "train_loss")})
        if kind is OverlappingBackend:
            assert backends[0].started >= len(outcomes[kind][0])  # rank 0's windows went out overlapped
    assert outcomes[OverlappingBackend] == outcomes[FakeBackend]
    assert [r[1] for r in outcomes[FakeBackend][0]][:2] == [3, 6]
