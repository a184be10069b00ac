"""``bench.json``, ``bench.png`` and the printed table of one ``hvdjob bench``."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from hvdrun_cli.bench.analysis import NpResult, analyze
from hvdrun_cli.bench.machine import describe_machine
from hvdrun_cli.bench.plot import plot_data, write_plot
from hvdrun_cli.bench.samples import RunSample
from hvdrun_cli.bench.table import SPREAD_NOTE, bench_table
from hvdrun_cli.files import write_json_atomic

BENCH_JSON = "bench.json"
BENCH_PNG = "bench.png"


@dataclass(frozen=True)
class BenchReport:
    job: str
    spec_path: str
    repeats: int
    steps: Optional[int]
    machine: Dict[str, object]
    samples: Sequence[RunSample]
    load_before: Optional[float] = None
    load_after: Optional[float] = None
    set_options: Sequence[str] = field(default_factory=tuple)

    @property
    def results(self) -> List[NpResult]:
        return analyze(self.samples)

    def to_dict(self) -> Dict[str, Any]:
        return {
            "job": self.job,
            "spec": self.spec_path,
            "repeats": self.repeats,
            "steps": self.steps,
            "set": list(self.set_options),
            "machine": self.machine,
            "load_average_1min": {"before": self.load_before, "after": self.load_after},
            "results": [r.to_dict() for r in self.results],
            "runs": [s.to_dict() for s in self.samples],
        }

    def text(self, markdown: bool = False) -> str:
        table = bench_table(self.results)
        body = table.markdown() if markdown else table.text()
        return "\n".join([
            f"{self.job}: {self.repeats} repeat(s), {SPREAD_NOTE}",
            f"machine: {describe_machine(self.machine)}",
            body,
        ])


def write_report(report: BenchReport, out_dir: str, plot: bool = True) -> Dict[str, str]:
    """Write bench.json (and bench.png unless ``plot`` is False); returns the paths written."""
    os.makedirs(out_dir, exist_ok=True)
    written = {"json": os.path.join(out_dir, BENCH_JSON)}
    write_json_atomic(written["json"], report.to_dict())
    if plot:
        title = f"hvdjob bench {report.job}\n{describe_machine(report.machine)}"
        written["png"] = write_plot(plot_data(report.results, title), os.path.join(out_dir, BENCH_PNG))
    return written
