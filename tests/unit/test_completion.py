"""Shell completion through click's protocol, as zsh's and fish's scripts ask for it (in process)."""
from __future__ import annotations

from typing import List

import pytest
from click.testing import CliRunner

import hvdrun_cli.cli.completion  # noqa: F401  (registers the bash script hvdjob prints)
from hvdrun_cli.cli.main import cli
from hvdrun_cli.cli.spec_options import spec_keys


def candidates(shell: str, line: str) -> List[str]:
    """What ``hvdjob`` answers when ``shell``'s completion script asks about ``line`` (cursor at its end)."""
    words = line.split(" ")
    # zsh's script passes the index of the word under the cursor; fish's passes that word itself
    cword = words[-1] if shell == "fish" else str(len(words) - 1)
    env = {"_HVDJOB_COMPLETE": f"{shell}_complete", "COMP_WORDS": line, "COMP_CWORD": cword}
    result = CliRunner().invoke(cli, [], env=env, prog_name="hvdjob")
    assert result.exit_code == 0, result.output
    out = result.stdout.splitlines()
    if shell == "zsh":  # type, value, help: three lines per candidate
        return [out[i + 1] for i in range(0, len(out), 3)]
    return [line.split("\t")[0].split(",", 1)[-1] if shell == "fish" else line for line in out]


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_commands_options_and_spec_keys(shell: str) -> None:
    assert candidates(shell, "hvdjob ru") == ["run", "runs"]
    assert candidates(shell, "hvdjob sub") == ["submit"]
    assert "init" in candidates(shell, "hvdjob ") and "completion" in candidates(shell, "hvdjob ")
    assert set(candidates(shell, "hvdjob run --n")) >= {"--np", "--network-interfaces"}
    keys = candidates(shell, "hvdjob run --set train.")
    assert "train.lr=" in keys and "train.batch_size=" in keys and all(k.startswith("train.") for k in keys)
    assert candidates(shell, "hvdjob run --launcher ") == ["auto", "gloo", "mpi", "srun"]


def test_spec_keys_follow_the_schema() -> None:
    top = spec_keys("")
    assert "train." in top and "resources." in top and "framework=" in top and "launcher=" in top
    assert spec_keys("resources.n") == ["resources.np="]
    assert spec_keys("nosuch.") == []


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_command_prints_the_script_click_would(shell: str) -> None:
    printed = CliRunner().invoke(cli, ["completion", shell], prog_name="hvdjob")
    sourced = CliRunner().invoke(cli, [], env={"_HVDJOB_COMPLETE": f"{shell}_source"}, prog_name="hvdjob")
    assert printed.exit_code == 0 and sourced.exit_code == 0
    assert printed.stdout.strip() == sourced.stdout.strip()
    assert "_HVDJOB_COMPLETE" in printed.stdout
