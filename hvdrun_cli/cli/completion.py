"""Shell completion for bash, zsh and fish, through click's own mechanism.

``hvdjob completion bash`` prints the script that ``_HVDJOB_COMPLETE=bash_source hvdjob`` prints;
the shell then asks ``hvdjob`` itself for candidates (``_HVDJOB_COMPLETE=bash_complete``), so
command names, option names, choices and ``--set`` spec keys always match the installed hvdjob.

Bash gets one change from click's script: after a candidate ending in ``=`` or ``.`` (``--set
train.lr=``, ``--set train.``) no space is added, so the value or the next key part follows directly.
"""
from __future__ import annotations

import click
from click.shell_completion import BashComplete, add_completion_class, get_completion_class

PROG_NAME = "hvdjob"
COMPLETE_VAR = "_HVDJOB_COMPLETE"
SHELLS = ("bash", "zsh", "fish")


class HvdjobBashComplete(BashComplete):
    """click's bash completion, without the trailing space after a ``KEY=`` or ``section.`` candidate."""

    source_template = BashComplete.source_template.replace(
        "            COMPREPLY+=($value)\n",
        "            COMPREPLY+=($value)\n"
        "            if [[ $value == *= || $value == *. ]]; then\n"
        "                compopt -o nospace\n"
        "            fi\n",
    )


add_completion_class(HvdjobBashComplete, "bash")


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the completion script for SHELL (bash, zsh or fish).

    \b
    bash:  eval "$(hvdjob completion bash)"    (in ~/.bashrc)
    zsh:   eval "$(hvdjob completion zsh)"     (in ~/.zshrc)
    fish:  hvdjob completion fish > ~/.config/fish/completions/hvdjob.fish
    """
    from hvdrun_cli.cli.main import cli  # the group whose commands are completed

    cls = get_completion_class(shell)
    assert cls is not None
    click.echo(cls(cli, {}, PROG_NAME, COMPLETE_VAR).source())
