"""Script mode: run the user's own Horovod script as if it were started with ``python script.py``.

The script calls ``hvd.init()`` itself; we only prepare what a plain ``python`` start would give it
(``sys.argv``, the script's directory on ``sys.path``, ``__name__ == "__main__"``) plus the Keras
alias TensorFlow scripts need. Its exit status (``sys.exit``) passes through unchanged.
"""
from __future__ import annotations

import os
import runpy
import sys
from typing import Sequence

from hvdrun_cli.errors import Problem, UserInputError


def run_script(script: str, args: Sequence[str]) -> None:
    """Execute ``script`` in this process with ``args``; exceptions and SystemExit propagate."""
    if not os.path.isfile(script):
        raise UserInputError(Problem("script not found on this host", key="script", got=script))
    script = os.path.abspath(script)
    sys.argv = [script, *args]
    sys.path.insert(0, os.path.dirname(script))
    runpy.run_path(script, run_name="__main__")
