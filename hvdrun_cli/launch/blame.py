"""Which rank's failure came first, and which failures were only its consequences.

When one rank raises, Horovod shuts down on every rank: its peers, waiting in a collective, fail
with "Horovod has been shut down" or a Gloo connection error, often *before* the first rank has
finished exiting (its interpreter is still tearing down). Naming the first rank whose end line
arrived would then blame an innocent peer with a secondary traceback. So failures are ranked:

1. failures that are not consequences come before consequences: a consequence is a rank whose
   last lines show Horovod's shutdown or a lost peer connection, or one killed by a stop signal
   (SIGTERM/SIGINT/SIGHUP: mpirun, srun or hvdjob ending the job) while another rank failed;
2. within each group, the rank whose first error line (or else its end) was seen first.

When every failure is a consequence, the cause may be a rank that never failed at all: one that
went silent (its host cut off, its process hung or stopped). Its peers wait in a collective until
Gloo gives up ("Timed out waiting 30000ms for recv operation"), and those timeouts are all the
launcher sees; the silent rank never reports how it ended. :func:`describe_silent` names it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

if TYPE_CHECKING:
    from hvdrun_cli.launch.output import RankEnd

_CONSEQUENCE = re.compile(
    r"Horovod has been shut down|Connection closed by peer|Connection reset by peer|Broken pipe|"
    r"gloo::(?:IoException|EnforceNotMet).*(?:Read|Write|Connect|pair)|Read error|Write error|"
    r"Timed out waiting .* for other ranks|Timed out waiting \d+ms for (?:send|recv) operation|"
    r"ECONNRESET|MPI_ERR_PROC_FAILED"
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


def silent_ranks(expected: Iterable[int], ended: Iterable[int]) -> List[int]:
    """The ranks of the job that never reported how they ended, in rank order."""
    done = set(ended)
    return sorted(r for r in set(expected) if r not in done)


def _ranks_text(ranks: Sequence[int]) -> str:
    return ("rank " if len(ranks) == 1 else "ranks ") + ", ".join(map(str, ranks))


def describe_silent(silent: Sequence[int], host_of: Mapping[int, str]) -> str:
    """``host n2 stopped responding (ranks 2, 3 ran there and never reported how they ended)``.

    A host all of whose ranks went silent is named as the host (it was cut off or died); a silent
    rank whose host-mates ended is named as the rank (it hung or was stopped).
    """
    by_host: Dict[str, List[int]] = {}
    for rank in silent:
        by_host.setdefault(host_of.get(rank, "?"), []).append(rank)
    parts = []
    for host, ranks in by_host.items():
        whole_host = all(r in silent for r, h in host_of.items() if h == host)
        if whole_host:
            verb = "ran there and never reported how they ended" if len(ranks) > 1 else \
                "ran there and never reported how it ended"
            parts.append(f"host {host} stopped responding ({_ranks_text(ranks)} {verb})")
        else:
            it = "they" if len(ranks) > 1 else "it"
            parts.append(f"{_ranks_text(ranks)} on {host} stopped responding ({it} never reported how {it} ended)")
    return "; ".join(parts)
