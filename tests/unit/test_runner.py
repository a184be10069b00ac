"""The one runner behind run, smoke and bench, with tiny real processes standing in for ranks (no Horovod).

The planner is swapped for a hand-made plan (the runner's one seam, ``Launch._plan``); everything
after it is the real thing: run directory, ``latest`` link, result files, restarts, the time limit.
"""
from __future__ import annotations

import io
import json
import os
import sys
import time
from pathlib import Path
from typing import List

from hvdrun_cli.launch.plan import LaunchPlan, ProcessSpec
from hvdrun_cli.launch.runner import Launch, RunOptions
from hvdrun_cli.launch.tools import Tools
from hvdrun_cli.spec import load_spec_text

# Exit code per attempt from RANK_EXITS ("3,0": fail the first attempt, succeed the second); SLEEP_S first.
RANK_CODE = (
    "import os, sys, time; a = int(os.environ['HVDJOB_ATTEMPT']); print('attempt', a, flush=True); "
    "time.sleep(float(os.environ.get('SLEEP_S', '0'))); "
    "sys.exit(int(os.environ.get('RANK_EXITS', '0').split(',')[a]))"
)


class FakeLaunch(Launch):
    """A Launch whose plans start one tiny rank instead of a Horovod job."""

    env: tuple = ()

    def _plan(self, attempt: int) -> LaunchPlan:
        argv = (sys.executable, "-m", "hvdrun_cli.launch.rank_io", "--", sys.executable, "-c", RANK_CODE)
        return LaunchPlan(
            launcher="local", processes=(ProcessSpec(argv, env=(("HOROVOD_RANK", "0"),), rank=0),), layout=(),
            hosts=(), run_dir=self.run_dir, run_id=self.run_id,
            env=(("HVDJOB_ATTEMPT", str(attempt)), ("HVDJOB_RUN_ID", self.run_id), *self.env), attempt=attempt)


def _spec(tmp_path: Path, extra: str = ""):
    (tmp_path / "s.py").write_text("print('hi')\n")
    text = f"framework: torch\nname: tiny\nscript: s.py\nrun_root: {json.dumps(str(tmp_path / 'runs'))}\n{extra}"
    return load_spec_text(text, "tiny", str(tmp_path))


def _launch(tmp_path: Path, env=(), run_dir=None, extra: str = "") -> FakeLaunch:
    FakeLaunch.env = tuple(env)
    return FakeLaunch(_spec(tmp_path, extra), run_dir=run_dir, tools=Tools(python=sys.executable))


def test_a_run_leaves_its_files_and_points_latest_at_itself(tmp_path: Path) -> None:
    launch = _launch(tmp_path)
    assert not os.path.exists(launch.run_dir)  # planning writes nothing
    started: List[str] = []
    outcome = launch.run(RunOptions(quiet=True, terminal=io.StringIO()), on_started=started.append)
    assert outcome.ok and started == [launch.run_dir]
    run_dir = Path(launch.run_dir)
    assert run_dir.parent == tmp_path / "runs" / "tiny"
    assert json.loads((run_dir / "spec.json").read_text())["name"] == "tiny"
    assert json.loads((run_dir / "plan.json").read_text())["run_id"] == launch.run_id
    assert json.loads((run_dir / "result.json").read_text())["exit_code"] == 0
    assert os.readlink(run_dir.parent / "latest") == run_dir.name


def test_an_explicit_run_dir_gets_no_latest_link_beside_it(tmp_path: Path) -> None:
    launch = _launch(tmp_path, run_dir=str(tmp_path / "mine"))
    assert launch.run(RunOptions(quiet=True, terminal=io.StringIO())).ok
    assert (tmp_path / "mine" / "result.json").exists() and not (tmp_path / "latest").exists()


def test_restarts_come_from_the_spec_unless_given(tmp_path: Path) -> None:
    launch = _launch(tmp_path, env=(("RANK_EXITS", "3,0"),), extra="restarts: 1\n")
    outcome = launch.run(RunOptions(quiet=True, terminal=io.StringIO()))
    assert outcome.ok
    assert json.loads((Path(launch.run_dir) / "plan.json").read_text())["attempt"] == 1  # the last attempt's plan
    again = _launch(tmp_path, env=(("RANK_EXITS", "3,0"),), extra="restarts: 1\n")
    outcome = again.run(RunOptions(max_restarts=0, quiet=True, terminal=io.StringIO()))
    assert outcome.result.exit_code == 3
    assert json.loads((Path(again.run_dir) / "result.json").read_text())["exit_code"] == 3


def test_the_time_limit_stops_the_job_and_says_so(tmp_path: Path) -> None:
    launch = _launch(tmp_path, env=(("SLEEP_S", "60"),))
    terminal = io.StringIO()
    started = time.monotonic()
    outcome = launch.run(RunOptions(time_limit_s=1.0, quiet=True, terminal=terminal))
    assert time.monotonic() - started < 30  # far less than the rank's 60 s
    assert outcome.timed_out and not outcome.ok
    assert "hvdjob: time limit of 1 s reached; stopping the job" in terminal.getvalue()
    assert json.loads((Path(launch.run_dir) / "result.json").read_text())["exit_code"] != 0
