"""``hvdjob run`` flags for what the terminal shows: ``--ranks 0,3-5`` (the logs keep every rank)."""
from __future__ import annotations

from typing import FrozenSet, Optional

import click

from hvdrun_cli.errors import Problem, UserInputError
from hvdrun_cli.launch.fold import parse_rank_selection


def _parse(_ctx: click.Context, _param: click.Parameter, value: Optional[str]) -> Optional[FrozenSet[int]]:
    if value is None:
        return None
    try:
        return parse_rank_selection(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


rank_selection_option = click.option(
    "--ranks", "ranks", metavar="LIST", callback=_parse, default=None,
    help="Show only these ranks' output on the terminal, e.g. 0 or 0,3-5 (every rank is still logged).",
)


def check_rank_selection(ranks: Optional[FrozenSet[int]], np: int) -> None:
    """Refuse ranks the job does not have (an elastic job's np is not known: anything goes)."""
    if ranks is None or np == 0:
        return
    missing = sorted(r for r in ranks if r >= np)
    if missing:
        shown = ", ".join(str(r) for r in missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise UserInputError(Problem(f"the job has ranks 0-{np - 1}; no rank {shown}", key="--ranks"))
