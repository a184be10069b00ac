"""Rank-side elastic bookkeeping: re-sharding the rest of an epoch, world-size log, resume position."""
from __future__ import annotations

import numpy as np

from hvdrun_cli.adapters.elastic import WorldLog, remaining_indices, resumed_processed, shard, steps_in


def test_remaining_samples_are_shared_by_the_current_ranks_without_repeats() -> None:
    left = remaining_indices(100, seed=3, epoch=2, processed=40)
    assert len(left) == 60
    assert not set(left) & set(np.random.default_rng([3, 2]).permutation(100)[:40])
    parts = [shard(left, 3, r) for r in range(3)]
    assert [len(p) for p in parts] == [20, 20, 20]
    assert sorted(np.concatenate(parts)) == sorted(left)


def test_uneven_remainders_are_padded_so_every_rank_runs_the_same_steps() -> None:
    left = remaining_indices(10, seed=0, epoch=0, processed=3)  # 7 samples over 2 ranks
    parts = [shard(left, 2, r) for r in range(2)]
    assert [len(p) for p in parts] == [4, 4]
    assert set(np.concatenate(parts)) == set(left)
    assert steps_in(4, batch_size=3) == 2 and steps_in(4, batch_size=1, passes=3) == 2


def test_an_epoch_with_everything_done_leaves_nothing() -> None:
    assert len(remaining_indices(10, 0, 0, processed=12)) == 0
    assert len(shard(remaining_indices(10, 0, 0, processed=10), 2, 1)) == 0


def test_world_log_describes_changes_and_counts_resets() -> None:
    log = WorldLog()
    assert log.record(0, 2) is None
    assert log.record(30, 2) is None  # re-entered without a size change
    assert log.record(45, 1) == ("workers shrank from 2 to 1; continuing from the last commit at step 45, "
                                 "data re-sharded over 1 rank")
    assert log.record(90, 3).startswith("workers grew from 1 to 3")
    assert log.summary() == {"world_sizes": [[0, 2], [30, 2], [45, 1], [90, 3]], "resets": 3}


def test_resume_position_from_elastic_and_fixed_size_checkpoints() -> None:
    assert resumed_processed({"elastic": {"processed": 640}}, 32, 1, 1437) == 640
    fixed = {"position": {"epoch": 1, "step_in_epoch": 5, "global_step": 28}, "world_size": 2}
    assert resumed_processed(fixed, batch_size=32, passes=1, n=1437) == 5 * 32 * 2
    assert resumed_processed({**fixed, "position": {**fixed["position"], "step_in_epoch": 40}}, 32, 1, 1437) == 1437
