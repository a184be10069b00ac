"""``hvdjob doctor``: how Horovod was built and which launchers are usable on this machine.

With ``--hostfile FILE`` or ``-H a:2,b:2`` it checks the hosts of a job instead: ssh, versions,
shared network and a real collective across them (see :mod:`hvdrun_cli.preflight`).
"""
from __future__ import annotations

import sys
from typing import Dict, List, Optional, Tuple

import click

from hvdrun_cli.cli.common import clean_errors, echo_json
from hvdrun_cli.doctor.facts import Facts, gather
from hvdrun_cli.errors import Problem, UserInputError
from hvdrun_cli.hosts import Host, parse_host_list, parse_hostfile

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
        if facts.gpu:
            version = f" (NCCL {facts.gpu['nccl_version']})" if facts.gpu.get("nccl_version") else ""
            lines.append(f"  GPU:          {facts.gpu['summary']}{version}; {facts.gpu['how']}")
    t = facts.tools
    lines.append("launch tools:")
    lines.append(f"  horovodrun  {t.get('horovodrun') or 'not found'}")
    mpi = t.get("mpirun")
    lines.append(f"  mpirun      {mpi + ' (' + (t.get('mpirun_version') or t.get('mpi_implementation') or '?') + ')' if mpi else 'not found'}")
    srun = t.get("srun")
    lines.append(f"  srun        {srun + ' (' + (t.get('slurm_version') or '?') + ')' if srun else 'not found'}")
    lines.append(f"  sbatch      {t.get('sbatch') or 'not found'}")
    lines += [f"warning: {w}" for w in facts.warnings]
    if facts.problems:
        lines += [f"problem: {p}" for p in facts.problems]
    else:
        lines.append("verdict: ready")
    return "\n".join(lines)


def _hosts(hostfile: Optional[str], hosts: Optional[str]) -> Optional[Tuple[Host, ...]]:
    if hostfile and hosts:
        raise UserInputError(Problem("give either --hostfile or -H, not both", key="--hostfile/-H"))
    if hostfile:
        return parse_hostfile(hostfile)
    if hosts:
        return parse_host_list([hosts], "-H")
    return None


def _interfaces(values: Tuple[str, ...]) -> Tuple[str, ...]:
    return tuple(name.strip() for value in values for name in value.split(",") if name.strip())


def check_hosts_command(hosts: Tuple[Host, ...], as_json: bool, timeout: float, network_test: bool,
                        mib: float, nics: Tuple[str, ...]) -> None:
    """``doctor --hostfile/-H``: per-host verdicts; exit 1 when the job would fail on these hosts."""
    from hvdrun_cli.preflight.check import preflight  # imported on use: plain `doctor` stays lean
    from hvdrun_cli.preflight.render import render_report

    report = preflight(hosts, timeout, network_test=network_test, mib=mib, nics=nics)
    if as_json:
        echo_json(report.to_dict())
    else:
        click.echo(render_report(report))
    if not report.ok:
        if as_json:
            bad = [v.host for v in report.verdicts if not v.ok]
            click.echo(f"hvdjob: the job would fail: problems on {', '.join(bad) or 'the collective'}", err=True)
        sys.exit(1)


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print the facts as JSON.")
@click.option("--hostfile", type=click.Path(dir_okay=False), default=None,
              help="Check the hosts in this hostfile instead of this machine's build.")
@click.option("-H", "--hosts", default=None, metavar="a:2,b:2", help="Check these hosts (same form as run -H).")
@click.option("--timeout", type=click.FloatRange(min=1), default=10.0, show_default=True,
              help="Seconds to reach and probe each host.")
@click.option("--network-test/--no-network-test", default=True, show_default=True,
              help="Run an allreduce and a latency/bandwidth ring across the hosts.")
@click.option("--mib", type=click.FloatRange(min=0.001), default=16.0, show_default=True,
              help="Message size of the network test.")
@click.option("--network-interface", "nics", multiple=True, metavar="NAME",
              help="Interface(s) the job will use (horovod.network_interfaces); checked on every host.")
@clean_errors
def doctor(as_json: bool, hostfile: Optional[str], hosts: Optional[str], timeout: float, network_test: bool,
           mib: float, nics: Tuple[str, ...]) -> None:
    """Show how Horovod was built and which launch tools work here (exit 1 if Horovod is unusable).

    With --hostfile or -H: check that a job can run on those hosts (exit 1 if it would fail).
    """
    chosen = _hosts(hostfile, hosts)
    if chosen is not None:
        check_hosts_command(chosen, as_json, timeout, network_test, mib, _interfaces(nics))
        return
    facts = gather()
    if as_json:
        echo_json(facts.to_dict())
    else:
        click.echo(render(facts))
    if not facts.ok:
        if as_json:
            click.echo(f"hvdjob: {facts.problems[0]}", err=True)
        sys.exit(1)
