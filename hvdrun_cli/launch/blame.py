"""Which rank's failure came first, and which failures were only its consequences.

When one rank raises, Horovod shuts down on every rank: its peers, waiting in a collective, fail
with "Horovod has been shut down" or a Gloo connection error, often *before* the first rank has
finished exiting (its interpreter is still tearing down). Naming the first rank whose end line
arrived would then blame an innocent peer with a secondary traceback. So failures are ranked:

1. failures that are not consequences come before consequences: a consequence is a rank whose
   last lines show Horovod's shutdown or a lost peer connection, or one killed by a stop signal
   (SIGTERM/SIGINT/SIGHUP: mpirun, srun or hvdjob ending the job) while another rank failed;
2. within each group, the rank whose first error line (or else its end) was seen first.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Tuple

if TYPE_CHECKING:
    from hvdrun_cli.launch.output import RankEnd

_CONSEQUENCE = re.compile(
    r"Horovod has been shut down|Connection closed by peer|Connection reset by peer|Broken pipe|"
    r"gloo::(?:IoException|EnforceNotMet).*(?:Read|Write|Connect|pair)|Read error|Write error|"
    r"Timed out waiting .* for other ranks|ECONNRESET|MPI_ERR_PROC_FAILED"
)
_STOPPED = ("SIGTERM", "SIGINT", "SIGHUP")


def consequence_of_peer(tail: Sequence[str]) -> Optional[str]:
    """What shows that this rank failed because a peer failed (e.g. "Horovod has been shut down"), if anything."""
    for line in reversed(tail):
        match = _CONSEQUENCE.search(line)
        if match:
            return match.group(0)
    return None


@dataclass(frozen=True)
class Verdict:
    first: "RankEnd"
    secondary: Tuple[Tuple["RankEnd", str], ...]  # (end, why it counts as secondary)


def rank_failures(
    failed: Sequence["RankEnd"],
    tail_of: Callable[[int], Sequence[str]],
    first_error_at: Dict[int, float],
) -> Optional[Verdict]:
    """The failures ordered as the module docstring says; None when nothing failed."""
    if not failed:
        return None
    own_errors = [e for e in failed if e.signal_name not in _STOPPED and not consequence_of_peer(tail_of(e.rank))]

    def why_secondary(end: "RankEnd") -> str:
        seen = consequence_of_peer(tail_of(end.rank))
        if seen:
            return f"a consequence: {seen}"
        if end.signal_name in _STOPPED and own_errors:
            return "stopped with the job"
        return ""

    def key(end: "RankEnd") -> Tuple[bool, float, float]:
        seen = min(first_error_at.get(end.rank, end.at), end.at)
        return (bool(why_secondary(end)), seen, end.at)

    ordered: List["RankEnd"] = sorted(failed, key=key)
    return Verdict(ordered[0], tuple((e, why_secondary(e) or "failed later") for e in ordered[1:]))
