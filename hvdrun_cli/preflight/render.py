"""Text form of a preflight report: one block per host, problems first-class, then the verdict."""
from __future__ import annotations

from typing import List

from hvdrun_cli.preflight.model import HostVerdict, PreflightReport

SHOWN_PACKAGES = ("horovod", "torch", "tensorflow", "mpi4py")


def _box(ok: bool) -> str:
    return "[X]" if ok else "[ ]"


def _host_lines(v: HostVerdict) -> List[str]:
    where = " (this machine)" if v.local else ""
    head = f"  {_box(v.ok)} {v.host}{where}"
    if v.facts is None:
        lines = [f"{head}  ({v.seconds:.1f} s)"]
    else:
        f = v.facts
        versions = ", ".join(f"{p} {f.packages.get(p) or '-'}" for p in SHOWN_PACKAGES)
        lines = [f"{head}  hostname {f.hostname}, Python {f.python}, {versions}  ({v.seconds:.1f} s)"]
        usable = [i for i in f.interfaces if i.name in v.usable_interfaces]
        if usable:
            lines.append("        interfaces for the job: " + ", ".join(f"{i.name} {i.address}/{i.prefixlen}" for i in usable))
    if v.link is not None:
        lines.append(
            f"        link -> {v.link.to_host}: latency {v.link.latency_us:.1f} us, "
            f"bandwidth {v.link.bandwidth_mib_s:.1f} MiB/s"
        )
    lines += [f"        problem: {p}" for p in v.problems]
    lines += [f"        note: {n}" for n in v.notes]
    return lines


def render_report(report: PreflightReport) -> str:
    lines = [f"preflight of {len(report.verdicts)} host(s) in {report.seconds:.1f} s"]
    for verdict in report.verdicts:
        lines += _host_lines(verdict)
    if report.common_subnets:
        lines.append("shared subnets: " + ", ".join(report.common_subnets))
    net = report.network
    if net is not None:
        if net.ok and net.allreduce_seconds is not None:
            rate = f" ({net.allreduce_bandwidth_mib_s:.1f} MiB/s per rank)" if net.allreduce_bandwidth_mib_s else ""
            lines.append(
                f"collective: {net.method}: allreduce of {net.allreduce_mib:g} MiB correct in "
                f"{net.allreduce_seconds:.3f} s{rate}"
            )
        else:
            lines.append(f"collective: {net.method}: FAILED: {net.error}")
    lines += [f"note: {n}" for n in report.notes]
    bad = [v.host for v in report.verdicts if not v.ok]
    if report.ok:
        lines.append("verdict: ready")
    elif bad:
        lines.append(f"verdict: the job would fail: problems on {', '.join(bad)}")
    else:
        lines.append("verdict: the job would fail: the collective across the hosts failed")
    return "\n".join(lines)
