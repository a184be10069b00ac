"""Turning command-line flags into overrides: ``--set KEY=VALUE``, ``--np``, ``--launcher``, ``--hostfile``, ``-H``."""
from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from hvdrun_cli.cli.spec_options import SpecFlags, overrides_from_flags, spec_options
from hvdrun_cli.errors import UserInputError
from hvdrun_cli.spec import Override, parse_set_option


def test_parse_set_option():
    assert parse_set_option("train.lr=0.1") == Override("train.lr", "0.1", "--set")
    assert parse_set_option("env={A: x=y}") == Override("env", "{A: x=y}", "--set")  # only the first '=' splits
    assert parse_set_option("name=") == Override("name", "", "--set")


@pytest.mark.parametrize("text", ["train.lr", "=3", ""])
def test_parse_set_option_needs_key_and_equals(text):
    with pytest.raises(UserInputError) as info:
        parse_set_option(text)
    assert str(info.value) == f"--set: expected KEY=VALUE, e.g. --set train.lr=0.1 (got {text!r})"


def test_overrides_from_flags_in_order():
    overrides = overrides_from_flags(["train.lr=0.1", "resources.np=2"], np="4", launcher="mpi",
                                     hostfile="hosts.txt", hosts="a:2,b:2")
    assert overrides == [
        Override("train.lr", "0.1", "--set"),
        Override("resources.np", "2", "--set"),
        Override("resources.np", "4", "--np"),  # after --set, so the named flag wins
        Override("launcher", "mpi", "--launcher"),
        Override("resources.hostfile", "hosts.txt", "--hostfile"),
        Override("resources.hosts", "a:2,b:2", "-H"),
    ]
    assert overrides_from_flags() == []


def test_overrides_from_flags_reports_every_bad_set():
    with pytest.raises(UserInputError) as info:
        overrides_from_flags(["a", "train.lr=1", "b"])
    assert [p.got for p in info.value.problems] == ["a", "b"]


def test_spec_options_hand_the_command_one_flags_object():
    seen = []

    @click.command()
    @spec_options
    def command(spec_flags: SpecFlags) -> None:
        seen.append(spec_flags)

    result = CliRunner().invoke(command, ["--set", "a=1", "--set", "b=2", "--np", "3", "-H", "x:1"])
    assert result.exit_code == 0, result.output
    assert seen == [SpecFlags(("a=1", "b=2"), "3", None, None, "x:1")]
    assert seen[0].overrides()[-1] == Override("resources.hosts", "x:1", "-H")
