"""Bash completion for real: source the script hvdjob prints and call its completion function as bash would."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

import pytest

from tests.hvdjob_process import REPO

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def shell_env(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """PATH with an ``hvdjob`` command (this checkout's), as an installed one would be."""
    bin_dir = tmp_path_factory.mktemp("bin")
    exe = bin_dir / "hvdjob"
    exe.write_text(f'#!/bin/sh\nexec {sys.executable} -m hvdrun_cli "$@"\n')
    exe.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    env["PYTHONPATH"] = f"{REPO}:{env.get('PYTHONPATH', '')}"
    return env


def complete(env: dict, tmp_path: Path, *words: str) -> Tuple[List[str], str]:
    """(COMPREPLY, what compopt was asked) for the command line ``words`` with the cursor on the last word."""
    script = tmp_path / "hvdjob.bash"
    script.write_text(subprocess.run(["hvdjob", "completion", "bash"], env=env, capture_output=True, text=True,
                                     check=True).stdout)
    quoted = " ".join(f"'{w}'" for w in words)
    program = (f"source {script}\n"
               "compopt() { echo compopt \"$@\" >&2; }\n"  # bash allows compopt only inside a real completion
               f"COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}\n"
               "_hvdjob_completion hvdjob\n"
               "printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    done = subprocess.run(["bash", "--norc", "-c", program], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line], done.stderr


def test_bash_completes_commands_options_and_set_keys(shell_env: dict, tmp_path: Path) -> None:
    assert complete(shell_env, tmp_path, "hvdjob", "ru")[0] == ["run", "runs"]
    options, _ = complete(shell_env, tmp_path, "hvdjob", "run", "--nproc")
    assert options == ["--nproc-per-node"]
    keys, asked = complete(shell_env, tmp_path, "hvdjob", "run", "--set", "train.")
    assert "train.lr=" in keys and "train.epochs=" in keys
    assert all(key.startswith("train.") for key in keys)
    assert "compopt -o nospace" in asked  # the value follows the '=' directly
    sections, _ = complete(shell_env, tmp_path, "hvdjob", "validate", "--set", "res")
    assert sections == ["resources.", "restarts="]
