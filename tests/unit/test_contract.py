"""The launcher <-> rank contract: what one side writes, the other side reads back the same."""
from __future__ import annotations

import json
import signal
from pathlib import Path

from hvdrun_cli import contract
from hvdrun_cli.hosts import Host, assign_ranks
from hvdrun_cli.launch.output import OutputRouter
from hvdrun_cli.launch.rank_io import describe_end, slurm_gloo_env


def test_supervisor_lines_parse_back_into_rank_events(tmp_path: Path) -> None:
    router = OutputRouter(str(tmp_path), open(tmp_path / "terminal", "w"), quiet=True)
    router.feed((contract.rank_label(3) + contract.started_line(3, 4242, "node-a") + "\n").encode())
    router.feed((contract.rank_label(3) + contract.progress_mark(17) + "\n").encode())
    router.feed((contract.rank_label(3) + describe_end("3", contract.EXIT_STOPPED) + "\n").encode())
    router.feed((contract.rank_label(1) + describe_end("1", -signal.SIGKILL) + "\n").encode())
    assert router.rank_pids == {3: 4242} and router.rank_hosts == {3: "node-a"}
    assert router.progress_step == {3: 17}
    ends = {e.rank: e for e in router.ends}
    assert ends[3].checkpointed and not ends[3].failed
    assert ends[1].signal_name == "SIGKILL" and ends[1].exit_code is None
    router.close()
    assert "at step" not in (tmp_path / contract.rank_log_name(3)).read_text()


def test_unlabelled_and_ordinary_lines_are_not_events() -> None:
    assert contract.parse_labelled("no label here") is None
    assert contract.parse_labelled("[12] hello") == (12, "hello")
    assert contract.parse_progress_mark("hvdjob: at step 5 of 9") is None
    assert contract.parse_ended("hvdjob: rank 0 started (pid 1 on h)") is None
    assert contract.parse_started("epoch 1/2 step 10") is None


def test_layout_file_gives_each_slurm_task_its_horovod_variables(tmp_path: Path) -> None:
    slots = assign_ranks([Host("a", 2), Host("b", 1)], 3)
    layout = tmp_path / contract.LAYOUT_FILE
    layout.write_text(contract.encode_layout(slots))
    env = slurm_gloo_env({contract.ENV_GLOO_LAYOUT: str(layout), "SLURM_PROCID": "2"})
    assert env == contract.slot_env(slots[2])
    assert env["HOROVOD_RANK"] == "2" and env["HOROVOD_HOSTNAME"] == "b" and env["HOROVOD_LOCAL_RANK"] == "0"
    assert env["HOROVOD_SIZE"] == "3" and env["HOROVOD_CROSS_SIZE"] == "2"
    assert json.loads(layout.read_text())[0]["local_size"] == 2


def test_summary_record_keeps_unknown_fields_flat() -> None:
    record = contract.Summary(framework="torch", status=contract.STATUS_COMPLETED, world_size=2, attempt=0,
                              steps=10, epochs=1.0, samples=640, extra={"batches_per_rank": [5, 5]})
    data = record.to_dict()
    assert data["batches_per_rank"] == [5, 5] and data["steps"] == 10
    assert contract.Summary.from_dict(data) == record
