"""Spreads over repeats, paired ratios and scaling efficiency: the numbers ``hvdjob bench`` prints."""
from __future__ import annotations

import pytest

from hvdrun_cli.bench.stats import (
    Spread,
    optional_spread,
    paired_ratios,
    ratio_spread,
    scaling_efficiency,
    spread,
)


def test_spread_of_odd_and_even_counts() -> None:
    assert spread([3.0, 1.0, 2.0]) == Spread(1.0, 2.0, 3.0, 3)
    assert spread([4, 1, 2, 3]) == Spread(1.0, 2.5, 4.0, 4)
    assert spread([7]) == Spread(7.0, 7.0, 7.0, 1)


def test_spread_of_nothing_is_an_error_not_zero() -> None:
    with pytest.raises(ValueError, match="no values"):
        spread([])
    assert optional_spread([None, None]) is None
    assert optional_spread([None, 2.0, 4.0]) == Spread(2.0, 3.0, 4.0, 2)


def test_ratios_are_paired_by_repeat_not_taken_from_medians() -> None:
    # Repeat 2 was slow for both variants (a noisy neighbour); pairing keeps the ratio steady.
    fast = [100.0, 50.0, 102.0]
    slow = [200.0, 100.0, 204.0]
    assert paired_ratios(fast, slow) == [0.5, 0.5, 0.5]
    assert ratio_spread(fast, slow) == Spread(0.5, 0.5, 0.5, 3)


def test_ratio_inputs_must_match_and_be_nonzero() -> None:
    with pytest.raises(ValueError, match="cannot pair 2 values with 3"):
        paired_ratios([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="zero"):
        paired_ratios([1.0], [0.0])


def test_scaling_efficiency() -> None:
    assert scaling_efficiency(1800.0, 2, 1000.0) == pytest.approx(0.9)
    assert scaling_efficiency(1000.0, 1, 1000.0) == 1.0
    # relative to np=2 when np=1 was not measured: 4 ranks doing 1.5x the work of 2 -> 0.75
    assert scaling_efficiency(3000.0, 4, 2000.0, base_np=2) == pytest.approx(0.75)
    with pytest.raises(ValueError):
        scaling_efficiency(1.0, 0, 1.0)
    with pytest.raises(ValueError):
        scaling_efficiency(1.0, 2, 0.0)


def test_scaled_spread_changes_units() -> None:
    assert spread([1.0, 2.0]).scaled(1000) == Spread(1000.0, 1500.0, 2000.0, 2)
    with pytest.raises(ValueError):
        spread([1.0]).scaled(-1)
