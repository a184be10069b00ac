"""Parsing the bench's own flags into typed values, and the order the runs happen in."""
from __future__ import annotations

from typing import List, Sequence, Tuple

from hvdrun_cli.errors import Problem, UserInputError


def parse_np_list(text: str, flag: str = "--np") -> Tuple[int, ...]:
    """``"1,2,4"`` -> ``(1, 2, 4)``; duplicates dropped, order kept. Bad entries are named together."""
    values: List[int] = []
    problems: List[Problem] = []
    parts = [part.strip() for part in str(text).split(",")]
    if not any(parts):
        raise UserInputError(Problem("needs a comma-separated list of rank counts, e.g. 1,2", key=flag, got=text))
    for part in parts:
        if not part.isdigit() or int(part) < 1:
            problems.append(Problem("every entry must be a whole number >= 1", key=flag, got=part))
        elif int(part) not in values:
            values.append(int(part))
    if problems:
        raise UserInputError(problems)
    return tuple(values)


def run_order(nps: Sequence[int], repeats: int) -> List[Tuple[int, int]]:
    """``(repeat, np)`` pairs: every np once per repeat, direction alternating between repeats.

    Interleaving puts the compared rank counts under the same background load; alternating the
    direction (1,2 then 2,1) cancels a slow drift (warming caches, a neighbour's job ending) that
    would otherwise always favour the rank count measured last.
    """
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    order: List[Tuple[int, int]] = []
    for repeat in range(repeats):
        sequence = list(nps) if repeat % 2 == 0 else list(reversed(nps))
        order += [(repeat, np) for np in sequence]
    return order
