"""``${VAR}`` / ``${VAR:-default}`` / ``$$`` in spec values."""
from __future__ import annotations

import pytest

from hvdrun_cli.spec.interpolate import InterpolationError, interpolate_text, interpolate_tree
from hvdrun_cli.spec.yaml_source import parse_yaml

ENV = {"USER": "ada", "EMPTY": "", "NP": "4"}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("${USER}", "ada"),
        ("runs/${USER}/x", "runs/ada/x"),
        ("${USER}-${NP}", "ada-4"),
        ("${MISSING:-cpu}", "cpu"),
        ("${EMPTY:-filled}", "filled"),  # like the shell's :-, empty counts as unset
        ("${USER:-other}", "ada"),
        ("${MISSING:-}", ""),
        ("$$5", "$5"),
        ("$${USER}", "${USER}"),
        ("echo $HOME", "echo $HOME"),  # a bare $ is left for the shell
        ("cost: 5$", "cost: 5$"),
    ],
)
def test_interpolate_text(text, expected):
    assert interpolate_text(text, ENV) == expected


def test_undefined_variable_names_it():
    with pytest.raises(InterpolationError, match=r"environment variable PARTITION is not set"):
        interpolate_text("${PARTITION}", ENV)


@pytest.mark.parametrize("text", ["${1X}", "${}", "${A B}", "${A:+x}"])
def test_malformed_reference(text):
    with pytest.raises(InterpolationError, match="is not a variable reference"):
        interpolate_text(text, ENV)


def test_unclosed_reference():
    with pytest.raises(InterpolationError, match="no closing"):
        interpolate_text("${USER", ENV)


def test_tree_types_plain_values_again_and_keeps_quoted_ones_as_strings():
    root, _ = parse_yaml('np: ${NP}\nname: "${NP}"\nflag: ${MISSING:-true}\nnone: ${MISSING:-}\n',
                        file="job.yaml", base_dir="/")
    assert interpolate_tree(root, ENV) == []
    assert root.to_plain() == {"np": 4, "name": "4", "flag": True, "none": None}


def test_tree_reports_the_key_and_line():
    root, _ = parse_yaml("framework: torch\nslurm:\n  partition: ${NO_SUCH_VAR}\n", file="job.yaml", base_dir="/")
    (problem,) = interpolate_tree(root, ENV)
    assert str(problem).startswith("job.yaml:3: slurm.partition: environment variable NO_SUCH_VAR is not set")
