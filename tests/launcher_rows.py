"""Reading the JSON rows that ranks print through a launcher.

`mpirun --tag-output` forwards a rank's line and its newline as separate chunks, so two ranks'
rows can share one output line ("[1,0]<stdout>:{...}[1,1]<stdout>:{...}"). Decoding every
object that starts with `{"rank"` finds each row wherever the launcher's tags put it.
"""
from __future__ import annotations

import json
from typing import List

ROW_START = '{"rank"'


def rank_rows(output: str) -> List[dict]:
    """Every `{"rank": ...}` object in `output`, sorted by rank."""
    decoder = json.JSONDecoder()
    rows = []
    start = output.find(ROW_START)
    while start >= 0:
        row, end = decoder.raw_decode(output, start)
        rows.append(row)
        start = output.find(ROW_START, end)
    return sorted(rows, key=lambda r: r["rank"])
