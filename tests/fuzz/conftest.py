"""Make the fuzz helpers importable as plain modules (tests/ is not an installed package)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
