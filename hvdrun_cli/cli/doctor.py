"""``hvdjob doctor``: how Horovod was built and which launchers are usable on this machine."""
from __future__ import annotations

import sys
from typing import Any, Dict, List

import click

from hvdrun_cli.cli.common import echo_json
from hvdrun_cli.doctor.facts import Facts, gather

NAMES = {"torch": "PyTorch", "tensorflow": "TensorFlow"}
OPS = ("nccl", "ddl", "ccl", "mpi", "gloo")


def _box(flag: bool) -> str:
    return "[X]" if flag else "[ ]"


def _built_union(facts: Facts) -> Dict[str, bool]:
    built: Dict[str, bool] = {}
    for result in facts.frameworks.values():
        for key, value in (result.get("built") or {}).items():
            built[key] = built.get(key, False) or value
    return built


def render(facts: Facts) -> str:
    lines: List[str] = [
        f"hvdjob {facts.hvdjob}, Python {facts.python} ({facts.python_executable})",
        f"Horovod {facts.horovod or 'not installed'}",
    ]
    if facts.horovod:
        lines.append("  frameworks:")
        for fw, result in facts.frameworks.items():
            version = result.get("version") or "not installed"
            extra = ""
            if fw == "tensorflow" and result.get("tf_keras"):
                extra = f", tf-keras {result['tf_keras']}"
            status = "" if result.get("ok") else f"  ({result.get('error', 'unavailable')})"
            lines.append(f"    {_box(bool(result.get('ok')))} {NAMES.get(fw, fw)} {version}{extra}{status}")
        built = _built_union(facts)
        lines.append("  controllers:  " + "  ".join(f"{_box(built.get(c, False))} {c.upper() if c == 'mpi' else c.capitalize()}" for c in ("mpi", "gloo")))
        lines.append("  tensor ops:   " + "  ".join(f"{_box(built.get(o, False))} {o.upper() if o != 'gloo' else 'Gloo'}" for o in OPS))
        lines.append(f"  GPU support:  {_box(built.get('cuda', False))} CUDA  {_box(built.get('rocm', False))} ROCm")
    t = facts.tools
    lines.append("launch tools:")
    lines.append(f"  horovodrun  {t.get('horovodrun') or 'not found'}")
    mpi = t.get("mpirun")
    lines.append(f"  mpirun      {mpi + ' (' + (t.get('mpirun_version') or t.get('mpi_implementation') or '?') + ')' if mpi else 'not found'}")
    srun = t.get("srun")
    lines.append(f"  srun        {srun + ' (' + (t.get('slurm_version') or '?') + ')' if srun else 'not found'}")
    lines.append(f"  sbatch      {t.get('sbatch') or 'not found'}")
    if facts.problems:
        lines += [f"problem: {p}" for p in facts.problems]
    else:
        lines.append("verdict: ready")
    return "\n".join(lines)


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print the facts as JSON.")
def doctor(as_json: bool) -> None:
    """Show how Horovod was built and which launch tools work here (exit 1 if Horovod is unusable)."""
    facts = gather()
    if as_json:
        echo_json(facts.to_dict())
    else:
        click.echo(render(facts))
    if not facts.ok:
        if as_json:
            click.echo(f"hvdjob: {facts.problems[0]}", err=True)
        sys.exit(1)
