"""Upper bounds on every size a user's input can ask for, checked before anything is built from it.

A hostile or mistyped input (``-H a:100000000``, an alias bomb, a spec nested 10,000 levels deep)
must end in one located error within a second, not in minutes of work or a traceback: every parser
and the spec validator read their limits from here, so the numbers live in one place and the README
can quote them. They sit far above what real jobs use (the largest Horovod runs have had tens of
thousands of ranks; a hand-written job spec is a few kilobytes).
"""
from __future__ import annotations

# ---- files ---------------------------------------------------------------------------------------
MAX_SPEC_BYTES = 256 << 10  # characters in a job spec (and one --set value); real ones are a few KiB
MAX_SPEC_VALUES = 20_000  # values (scalars, lists, mappings) in one spec, aliases expanded
MAX_HOSTFILE_BYTES = 8 << 20  # hostfiles and $PBS_NODEFILE (one line per slot: 160k slots x ~50 bytes)
MAX_YAML_DEPTH = 64  # nested mappings/lists in a spec
MAX_ALIAS_VALUES = 10_000  # values that YAML aliases (*name, <<: *name) may add to a spec

# ---- hosts and ranks -----------------------------------------------------------------------------
MAX_RANKS = 262_144  # ranks in one job (np, elastic.max_np, np from the hosts' slots): 20k+ nodes x 8 GPUs
MAX_HOSTS = 65_536  # hosts in a hostfile, host list or Slurm nodelist
MAX_SLOTS_PER_HOST = 4_096  # slots (ranks) on one host
MAX_COUNT_DIGITS = 12  # digits in a count read from text (a slot count, a Slurm task count)

# ---- reporting -----------------------------------------------------------------------------------
MAX_PROBLEMS = 100  # problems listed in one report; the rest are counted


def too_many(count: int, limit: int, what: str) -> str:
    """One wording for every bound: ``65537 hosts is more than hvdjob's limit of 65536``."""
    return f"{count} {what} is more than hvdjob's limit of {limit}"
