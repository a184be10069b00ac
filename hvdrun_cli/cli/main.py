"""The ``hvdjob`` command group.

Subcommands live in one module each and are imported only when invoked, so ``hvdjob --help`` and
``hvdjob validate`` stay fast on a login node (no framework imports, no unused modules).
"""
from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Dict, List, Optional, Tuple

import click

from hvdrun_cli import __version__

# name -> (module, attribute, one-line help shown by `hvdjob --help`)
COMMANDS: Dict[str, Tuple[str, str, str]] = {
    "run": ("hvdrun_cli.cli.run", "run", "Launch the job's ranks now (or --dry-run to print the plan)."),
    "validate": ("hvdrun_cli.cli.validate", "validate", "Check a job spec (and its hosts); report every problem."),
    "submit": ("hvdrun_cli.cli.submit", "submit", "Render an sbatch script for the job and submit it to Slurm."),
    "status": ("hvdrun_cli.cli.slurm_jobs", "status", "Show the state of submitted Slurm jobs."),
    "logs": ("hvdrun_cli.cli.slurm_jobs", "logs", "Print the output of a submitted Slurm job."),
    "cancel": ("hvdrun_cli.cli.slurm_jobs", "cancel", "Cancel a submitted Slurm job."),
    "doctor": ("hvdrun_cli.cli.doctor", "doctor", "Show how Horovod was built and which launchers work here."),
    "smoke": ("hvdrun_cli.cli.smoke", "smoke", "Run a job briefly on this box and check it trains."),
    "bench": ("hvdrun_cli.cli.bench", "bench", "Measure throughput and scaling of a job at several np."),
    "init": ("hvdrun_cli.cli.init", "init", "Write a commented starter job spec (for a script or managed training)."),
    "completion": ("hvdrun_cli.cli.completion", "completion", "Print the shell completion script (bash, zsh, fish)."),
    "report": ("hvdrun_cli.cli.report", "report", "Draw a run as one PNG: curves and per-rank timing (--json too)."),
    "runs": ("hvdrun_cli.cli.runs", "runs", "List past runs under the run root, newest first."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> List[str]:
        return [name for name in COMMANDS if _available(name)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> Optional[click.Command]:
        if cmd_name not in COMMANDS or not _available(cmd_name):
            return None
        module_name, attr, _ = COMMANDS[cmd_name]
        return getattr(importlib.import_module(module_name), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _available(name: str) -> bool:
    return importlib.util.find_spec(COMMANDS[name][0]) is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hvdjob")
def cli() -> None:
    """Launch Horovod training jobs from a YAML spec: local Gloo, mpirun over hosts, srun under Slurm."""


def main() -> None:
    if os.environ.get("_HVDJOB_COMPLETE"):
        import hvdrun_cli.cli.completion  # noqa: F401  (registers hvdjob's bash completion script)
    cli(prog_name="hvdjob")


if __name__ == "__main__":
    main()
