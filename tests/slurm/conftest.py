"""Tests against a real single-node Slurm started for the session (see tests/slurm_cluster.py)."""
from __future__ import annotations

import sys
from pathlib import Path

# tests/ is not a package; make its shared fixture module importable from here.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from slurm_cluster import slurm_cluster  # noqa: E402,F401  (the session fixture)
