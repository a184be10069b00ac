"""``--np 1,2,4`` parsing and the interleaved order runs happen in."""
from __future__ import annotations

import pytest

from hvdrun_cli.bench.options import parse_np_list, run_order
from hvdrun_cli.errors import UserInputError


def test_np_list() -> None:
    assert parse_np_list("1,2") == (1, 2)
    assert parse_np_list(" 4, 1 ,2,4") == (4, 1, 2)
    assert parse_np_list("3") == (3,)


def test_every_bad_entry_is_named_with_the_flag() -> None:
    with pytest.raises(UserInputError) as info:
        parse_np_list("1,two,0,-3")
    assert [str(p) for p in info.value.problems] == [
        "--np: every entry must be a whole number >= 1 (got 'two')",
        "--np: every entry must be a whole number >= 1 (got '0')",
        "--np: every entry must be a whole number >= 1 (got '-3')",
    ]
    with pytest.raises(UserInputError, match="comma-separated list"):
        parse_np_list(" , ")


def test_runs_interleave_and_alternate_direction() -> None:
    assert run_order((1, 2), 3) == [(0, 1), (0, 2), (1, 2), (1, 1), (2, 1), (2, 2)]
    assert run_order((2,), 2) == [(0, 2), (1, 2)]
    with pytest.raises(ValueError):
        run_order((1,), 0)
