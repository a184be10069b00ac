"""Every bad spec or flag in ``bad_specs/`` fails ``hvdjob validate`` cleanly: exit 2, located message.

Each ``bad_specs/*.yaml`` starts with comment lines: ``# expect: TEXT`` (each must appear in the
output; line numbers count these header lines) and optionally ``# args: FLAGS`` (extra command
line, split like a shell would). The command runs from inside ``bad_specs/`` with the bare file
name, so messages must keep the path exactly as the user gave it.
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import List, Tuple

import pytest
from click.testing import CliRunner

from hvdrun_cli.cli.main import cli

CORPUS = Path(__file__).resolve().parent / "bad_specs"
# "name.yaml:12:" / "name.yaml:12:3:" / "name.yaml:" (whole file) or "--flag:" / "-H:"
LOCATED = re.compile(r"^hvdjob: error: (\S+\.yaml(:\d+(:\d+)?)?|--?[A-Za-z-]+): \S")


def read_case(path: Path) -> Tuple[List[str], List[str]]:
    args: List[str] = []
    expects: List[str] = []
    for line in path.read_text().splitlines():
        if line.startswith("# args:"):
            args = shlex.split(line[len("# args:"):])
        elif line.startswith("# expect:"):
            expects.append(line[len("# expect:"):].strip())
    return args, expects


CASES = sorted(CORPUS.glob("*.yaml"))


def test_corpus_is_large_enough():
    assert len(CASES) >= 25


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_bad_spec_is_reported_cleanly(path: Path, monkeypatch):
    monkeypatch.chdir(CORPUS)
    for name in ("HVDJOB_TEST_UNDEFINED", "HVDJOB_TEST_LR"):
        monkeypatch.delenv(name, raising=False)
    args, expects = read_case(path)
    assert expects, f"{path.name} has no '# expect:' line"

    result = CliRunner().invoke(cli, ["validate", path.name, *args])

    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # not a crash caught by the runner
    assert "Traceback" not in result.output
    for expected in expects:
        assert expected in result.output
    lines = result.stderr.splitlines()
    assert lines, "no error printed"
    for line in lines:
        assert LOCATED.match(line), f"error line does not say where: {line!r}"
