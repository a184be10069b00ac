"""Fuzzing the three parsers hostile input reaches first: job specs, hostfiles, Slurm hostlists.

Several thousand generated inputs per run (hypothesis; ``HVDJOB_FUZZ_EXAMPLES`` scales them), each
of which must end in an answer or clean exit-2 problems within a second of CPU time (CPU, not wall
clock: the test machine is shared and a loaded box must not fail the run). Inputs that once failed
live in ``corpus/<parser>/`` and are replayed on every run.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from properties import CHECKS, check_hostfile_text, check_hostlist_text, check_spec_text
from strategies import HOSTFILES, hostlist_texts, spec_texts

CORPUS = Path(__file__).resolve().parent / "corpus"
SCALE = float(os.environ.get("HVDJOB_FUZZ_EXAMPLES", "1"))


CPU_SECONDS_PER_INPUT = 1.0


def fuzz_settings(examples: int) -> settings:
    return settings(max_examples=max(1, int(examples * SCALE)), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def within_a_second(check: Callable[..., None], text: str, **kwargs: bool) -> None:
    started = time.process_time()
    check(text, **kwargs)
    used = time.process_time() - started
    assert used < CPU_SECONDS_PER_INPUT, f"{used:.2f} s of CPU for one input"


@fuzz_settings(800)
@given(spec_texts())
def test_spec_loader_answers_or_reports(text: str) -> None:
    within_a_second(check_spec_text, text, cli_too=False)


@fuzz_settings(100)
@given(spec_texts())
def test_validate_exits_0_or_2_with_located_lines(text: str) -> None:
    within_a_second(check_spec_text, text, cli_too=True)


@fuzz_settings(400)
@given(st.text(max_size=200))
def test_spec_loader_on_arbitrary_text(text: str) -> None:
    within_a_second(check_spec_text, text, cli_too=False)


@fuzz_settings(1000)
@given(HOSTFILES)
def test_hostfile_parser_answers_or_reports(text: str) -> None:
    within_a_second(check_hostfile_text, text)


@fuzz_settings(1500)
@given(hostlist_texts() | st.text(alphabet="n0123456789[]-,x() ", max_size=40))
def test_slurm_hostlist_parser_answers_or_reports(text: str) -> None:
    within_a_second(check_hostlist_text, text)


CASES = sorted(p for p in CORPUS.glob("*/*") if p.is_file())


def test_corpus_is_kept() -> None:
    assert {p.parent.name for p in CASES} == set(CHECKS), "each parser keeps its regression inputs"


@pytest.mark.parametrize("path", CASES, ids=[f"{p.parent.name}/{p.name}" for p in CASES])
def test_corpus_case(path: Path) -> None:
    within_a_second(CHECKS[path.parent.name], path.read_bytes().decode("utf-8"))
