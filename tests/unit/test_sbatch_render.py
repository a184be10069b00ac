"""The sbatch renderer: golden scripts, quoting that survives the shell and sbatch, and its checks.

Golden files live in tests/unit/golden/. After an intended change to the script, regenerate them
with ``HVDJOB_UPDATE_GOLDEN=1 pytest tests/unit/test_sbatch_render.py`` and review the diff.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List

import pytest

from hvdrun_cli.errors import SpecError
from hvdrun_cli.slurm.sbatch import render_sbatch, sbatch_options
from hvdrun_cli.spec.model import JobSpec, ResourcesSpec, SlurmSpec, TrainSpec

GOLDEN = Path(__file__).parent / "golden"

# Values a user may well write: spaces, both kinds of quotes, shell metacharacters, '#'.
AWKWARD_SLURM = SlurmSpec(
    partition="gpu debug",
    time="1-12:00:00",
    nodes=2,
    ntasks_per_node=4,
    cpus_per_task=6,
    gpus_per_node=4,
    mem="64G",
    account="o'brien lab",
    qos='say "high"',
    constraint="a100&(ib|roce)",
    exclusive=True,
    extra=("--mail-type=END,FAIL", "--comment=it's a \"test\" #1; $(rm -rf ~)"),
    setup=("module load cuda/12.2", 'source "$HOME/venvs/train env/bin/activate"'),
    signal="USR1",  # a site whose MPI leaves USR1 alone may keep the old default
    signal_before_end_seconds=300,
    requeue=2,
)
AWKWARD_RUN_DIR = "/scratch/o'brien/runs/big job/slurm/20260101-000000"
AWKWARD_ARGV = ["--set", "train.lr=0.1", "--set", "env.NOTE=it's \"quoted\" $HOME", "--np", "8"]
AWKWARD_PYTHON = "/opt/my envs/py 3.11/bin/python"


def awkward_spec() -> JobSpec:
    return JobSpec(
        framework="torch",
        name="big-job",
        train=TrainSpec(),
        resources=ResourcesSpec(np=8),
        slurm=AWKWARD_SLURM,
        source="/home/u/jobs/big job.yaml",
    )


def minimal_spec(**slurm: object) -> JobSpec:
    return JobSpec(framework="torch", name="digits", train=TrainSpec(), slurm=SlurmSpec(**slurm),
                   source="/home/u/jobs/digits.yaml")


def render_awkward() -> str:
    return render_sbatch(awkward_spec(), "/home/u/jobs/big job.yaml", AWKWARD_ARGV, AWKWARD_RUN_DIR, AWKWARD_PYTHON)


def render_minimal() -> str:
    return render_sbatch(minimal_spec(), "/home/u/jobs/digits.yaml", [], "/home/u/runs/digits/slurm/20260101-000000",
                         "/usr/bin/python3")


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("HVDJOB_UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"missing golden file {path}; run with HVDJOB_UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(), f"rendered script differs from {path}"


def sbatch_lines(script: str) -> List[List[str]]:
    """Each #SBATCH line split the way a shell would split it (sbatch reads them alike)."""
    return [shlex.split(line) for line in script.splitlines() if line.startswith("#SBATCH")]


def options_by_name(script: str) -> Dict[str, str]:
    parsed = {}
    for tokens in sbatch_lines(script):
        name, _, value = tokens[1].partition("=")
        parsed[name] = value
    return parsed


def test_awkward_values_match_golden_file() -> None:
    check_golden("awkward.sbatch", render_awkward())


def test_minimal_spec_matches_golden_file() -> None:
    check_golden("minimal.sbatch", render_minimal())


def test_every_sbatch_line_is_one_shell_token_holding_the_exact_value() -> None:
    script = render_awkward()
    for tokens in sbatch_lines(script):
        assert len(tokens) == 2, f"#SBATCH line splits into {tokens}"
    options = options_by_name(script)
    assert options["--partition"] == "gpu debug"
    assert options["--account"] == "o'brien lab"
    assert options["--qos"] == 'say "high"'
    assert options["--constraint"] == "a100&(ib|roce)"
    assert options["--comment"] == "it's a \"test\" #1; $(rm -rf ~)"
    assert options["--output"] == f"{AWKWARD_RUN_DIR}/slurm-%j.out"
    assert options["--error"] == f"{AWKWARD_RUN_DIR}/slurm-%j.err"
    assert options["--job-name"] == "big-job"
    assert options["--signal"] == "B:USR1@300"
    assert options["--ntasks"] == "8"
    assert "--exclusive" in options and "--requeue" in options


def test_sbatch_lines_are_sorted_and_come_right_after_the_shebang() -> None:
    lines = render_awkward().splitlines()
    assert lines[0] == "#!/bin/bash"
    sbatch = [line for line in lines if line.startswith("#SBATCH")]
    assert sbatch == sorted(sbatch)
    first = lines.index(sbatch[0])
    assert lines[first:first + len(sbatch)] == sbatch  # one block: sbatch stops reading at the first command


def test_script_is_valid_bash() -> None:
    bash = shutil.which("bash")
    assert bash, "bash is needed to check the scripts"
    for script in (render_awkward(), render_minimal()):
        result = subprocess.run([bash, "-n"], input=script, text=True, capture_output=True)
        assert result.returncode == 0, result.stderr


def test_launch_line_runs_hvdjob_with_every_argument_intact() -> None:
    script = render_awkward()
    launch = next(line for line in script.splitlines() if line.endswith(" &"))
    assert shlex.split(launch[: -len(" &")]) == [
        AWKWARD_PYTHON, "-m", "hvdrun_cli", "run", "/home/u/jobs/big job.yaml", *AWKWARD_ARGV
    ]


def test_setup_lines_are_copied_verbatim_before_the_launch() -> None:
    script = render_awkward()
    lines = script.splitlines()
    positions = [lines.index(line) for line in AWKWARD_SLURM.setup]
    launch = next(i for i, line in enumerate(lines) if line.endswith(" &"))
    assert positions == sorted(positions) and positions[-1] < launch


def test_requeue_block_uses_the_spec_limit() -> None:
    script = render_awkward()
    assert '[ "${SLURM_RESTART_COUNT:-0}" -lt 2 ]' in script
    assert 'scontrol requeue "$SLURM_JOB_ID"' in script


def test_no_requeue_means_no_requeue_option_and_no_scontrol() -> None:
    script = render_minimal()
    assert "--requeue" not in options_by_name(script)
    assert "scontrol" not in script
    assert 'exit "$rc"' in script


def test_signal_zero_means_no_signal_option() -> None:
    options = sbatch_options(minimal_spec(signal_before_end_seconds=0), "/r")
    assert not any(o.startswith("--signal") for o in options)


def test_ntasks_is_nodes_times_tasks_per_node_when_both_given() -> None:
    spec = minimal_spec(nodes=3, ntasks_per_node=2)
    assert "--ntasks=6" in sbatch_options(spec, "/r")


def test_ntasks_comes_from_np_otherwise() -> None:
    spec = JobSpec(framework="torch", name="d", train=TrainSpec(), resources=ResourcesSpec(np=3),
                   slurm=SlurmSpec(nodes=2))
    options = sbatch_options(spec, "/r")
    assert "--ntasks=3" in options and "--nodes=2" in options


def test_no_ntasks_when_nothing_sets_it() -> None:
    assert not any(o.startswith("--ntasks") for o in sbatch_options(minimal_spec(), "/r"))


def test_np_larger_than_the_allocation_is_an_error() -> None:
    spec = JobSpec(framework="torch", name="d", train=TrainSpec(), resources=ResourcesSpec(np=5),
                   slurm=SlurmSpec(nodes=2, ntasks_per_node=2), source="job.yaml")
    with pytest.raises(SpecError) as info:
        sbatch_options(spec, "/r")
    (problem,) = info.value.problems
    assert problem.key == "resources.np" and problem.file == "job.yaml"
    assert "4 tasks" in problem.message


@pytest.mark.parametrize("bad", ["-N 2", "mail-type=END", "--", "partition=x"])
def test_extra_options_must_be_long_options(bad: str) -> None:
    with pytest.raises(SpecError) as info:
        sbatch_options(minimal_spec(extra=("--mail-type=END", bad)), "/r")
    (problem,) = info.value.problems
    assert problem.key == "slurm.extra[1]"
    assert problem.got == bad


@pytest.mark.parametrize(
    "slurm, key",
    [
        ({"partition": "debug\n#SBATCH --qos=high"}, "slurm.partition"),
        ({"extra": ("--comment=a\nrm -rf /",)}, "slurm.extra[0]"),
        ({"account": "lab\\a"}, "slurm.account"),
    ],
)
def test_values_that_would_not_survive_an_sbatch_line_are_rejected(slurm: Dict[str, object], key: str) -> None:
    with pytest.raises(SpecError) as info:
        sbatch_options(minimal_spec(**slurm), "/r")
    assert [p.key for p in info.value.problems] == [key]


@pytest.mark.parametrize("option, key", [("--time=10", "slurm.time"), ("--output=/tmp/x", "run_root"),
                                         ("--requeue", "slurm.requeue"), ("--job-name=other", "name")])
def test_extra_cannot_repeat_an_option_hvdjob_writes(option: str, key: str) -> None:
    with pytest.raises(SpecError) as info:
        sbatch_options(minimal_spec(extra=(option,)), "/r")
    (problem,) = info.value.problems
    assert problem.key == "slurm.extra[0]"
    assert key in problem.message


def test_all_problems_are_reported_together() -> None:
    spec = minimal_spec(partition="a\nb", extra=("bad", "--ok", "-x"))
    with pytest.raises(SpecError) as info:
        sbatch_options(spec, "/r")
    assert [p.key for p in info.value.problems] == ["slurm.partition", "slurm.extra[0]", "slurm.extra[2]"]


@pytest.mark.parametrize("name", ["USR2", "USR1", "TERM"])
def test_the_stop_signal_is_asked_for_and_trapped(name: str) -> None:
    script = render_sbatch(minimal_spec(signal=name), "/j.yaml", [], "/r", "/usr/bin/python3")
    assert options_by_name(script)["--signal"] == f"B:{name}@120"
    traps = [line for line in script.splitlines() if line.startswith("trap ")]
    expected = [f"trap 'forward {name}' {name}"] + ([] if name == "TERM" else ["trap 'forward TERM' TERM"])
    assert traps == expected


def test_default_stop_signal_is_usr2() -> None:
    assert options_by_name(render_minimal())["--signal"] == "B:USR2@120"
