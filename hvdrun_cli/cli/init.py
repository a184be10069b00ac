"""``hvdjob init [FILE]``: write a commented starter spec (for a script, or managed training) that validates.

Managed values are read from the spec model's defaults, so the starter always shows what a key
left out would mean; optional sections are written commented out, ready to switch on.
"""
from __future__ import annotations

import os
import shlex
import sys
from typing import List, Optional

import click

from hvdrun_cli.cli.common import clean_errors
from hvdrun_cli.errors import Problem, UserInputError
from hvdrun_cli.files import write_text_atomic
from hvdrun_cli.scriptjob.document import ScriptJob, inline_yaml, job_name, script_job
from hvdrun_cli.spec import load_spec_text
from hvdrun_cli.spec.model import FRAMEWORKS, TrainSpec

DEFAULT_FILE = "job.yaml"
STARTER_NP = 2

COMMENT_COLUMN = 30


def _c(text: str, comment: str) -> str:
    """``text`` with ``# comment`` aligned at :data:`COMMENT_COLUMN`."""
    return f"{text:<{COMMENT_COLUMN - 2}}  # {comment}"


def _common_tail() -> List[str]:
    return [
        "resources:",
        _c(f"  np: {STARTER_NP}", "ranks; with no hosts they all run on this machine"),
        _c("  # hosts: [node1:4, node2:4]", "or: hostfile: hosts.txt ('node1 slots=4' lines)"),
        "",
        _c("# launcher: auto", "auto | gloo | mpi | srun"),
        _c("# restarts: 0", "relaunch up to N times when a rank dies"),
        _c('# env: {OMP_NUM_THREADS: "1"}', "extra environment for every rank"),
        "# horovod:",
        _c("#   compression: none", "none | fp16"),
        "#   network_interfaces: [eth0]",
        _c("# slurm:", "used by 'hvdjob submit'"),
        "#   partition: gpu",
        '#   time: "01:00:00"',
        "#   nodes: 1",
    ]


def _header(file_name: str) -> List[str]:
    name = shlex.quote(file_name)
    return [
        "# Starter job spec written by 'hvdjob init'.",
        f"#   hvdjob validate {name}          check it (every problem with its line)",
        f"#   hvdjob run {name} --dry-run     see the exact launch plan",
        f"#   hvdjob run {name}               run it; 'hvdjob submit {name}' hands it to Slurm",
        "# Every key is described in jobs/reference.yaml of hvdjob's sources.",
        "",
    ]


def script_starter(job: ScriptJob, file_name: str, spec_dir: str) -> str:
    script = os.path.relpath(os.path.abspath(job.script), spec_dir)
    lines = _header(file_name) + [
        _c(f"framework: {job.framework}", job.framework_source),
        f"name: {job.name}",
        _c(f"script: {inline_yaml(script)}", "relative to this file; it calls hvd.init() itself"),
        _c(f"args: {inline_yaml(list(job.args))}", 'the script\'s arguments, e.g. [--epochs, "5"]'),
        "",
    ] + _common_tail()
    return "\n".join(lines) + "\n"


def managed_starter(framework: str, name: str, file_name: str) -> str:
    d = TrainSpec()
    lines = _header(file_name) + [
        _c(f"framework: {framework}", "torch | tensorflow"),
        f"name: {name}",
        "",
        "# Managed training: hvdjob builds model, data and optimizer and wraps them with Horovod.",
        "train:",
        _c(f"  model: {d.model}", 'built-in name or "package.module:function"'),
        _c(f"  data: {d.data}", 'built-in name or "package.module:function" returning your data'),
        _c(f"  optimizer: {d.optimizer}", 'sgd | adam | adamw | "package.module:function"'),
        f"  epochs: {d.epochs}",
        _c(f"  batch_size: {d.batch_size}", "per rank"),
        _c(f"  lr: {d.lr}", f"for one rank; scaled with the number of ranks ({d.lr_scaling})"),
        _c("  # max_steps: 1000", "stop after this many steps in total"),
        "",
        "# checkpoint:",
        _c("#   interval_steps: 100", "a run started again resumes from its latest checkpoint"),
        "",
    ] + _common_tail()
    return "\n".join(lines) + "\n"


@click.command("init")
@click.argument("file", default=DEFAULT_FILE, type=click.Path(dir_okay=False), metavar="[FILE]")
@click.option("--script", "script", type=click.Path(dir_okay=False), default=None, metavar="SCRIPT.py",
              help="Start from your own Horovod training script.")
@click.option("--managed", is_flag=True, help="Start from managed training (hvdjob builds model, data, optimizer).")
@click.option("--framework", type=click.Choice(FRAMEWORKS), default=None,
              help="torch or tensorflow (default: read from the script's imports; torch for --managed).")
@clean_errors
def init(file: str, script: Optional[str], managed: bool, framework: Optional[str]) -> None:
    """Write a commented starter job spec to FILE (default job.yaml; '-' prints it), never overwriting one."""
    if bool(script) == managed:
        raise UserInputError(Problem("give either --script SCRIPT.py (run your own script) or --managed "
                                     "(hvdjob trains a built-in or your own model)", key="init"))
    to_stdout = file == "-"
    if not to_stdout and os.path.exists(file):
        raise UserInputError(Problem("already exists; hvdjob init does not overwrite a spec (choose another "
                                     "FILE or remove it)", file=file))
    spec_dir = os.getcwd() if to_stdout else os.path.dirname(os.path.abspath(file))
    if not os.path.isdir(spec_dir):
        raise UserInputError(Problem(f"directory {spec_dir} does not exist", file=file))
    shown_name = "job.yaml" if to_stdout else file
    if script:
        text = script_starter(script_job(script, (), framework), shown_name, spec_dir)
    else:
        text = managed_starter(framework or "torch", job_name(shown_name), shown_name)
    spec = load_spec_text(text, shown_name, spec_dir)  # what is written validates
    if to_stdout:
        sys.stdout.write(text)
        return
    write_text_atomic(file, text)
    click.echo(f"wrote {file} ({spec.framework}, {'script' if spec.script else 'managed'}); next: "
               f"hvdjob validate {shlex.quote(file)}", err=True)
