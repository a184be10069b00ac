"""``hvdjob submit`` warns when the spec's own hosts or launcher would ignore the allocation."""
from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from hvdrun_cli.cli.main import cli

REPO = Path(__file__).resolve().parents[2]


def submit_dry_run(*args: str):
    return CliRunner().invoke(cli, ["submit", *args, "--dry-run"])


def test_cluster_example_names_what_overrides_the_allocation_and_how_to_drop_it() -> None:
    done = submit_dry_run(str(REPO / "jobs" / "cluster-digits.yaml"))
    assert done.exit_code == 0, done.stderr
    (line,) = [l for l in done.stderr.splitlines() if "warning" in l]
    assert "cluster-digits.yaml: resources.hosts (gpu-node01:4, gpu-node02:4) and launcher: mpi" in line
    assert "mpirun" in line and "--set 'resources.hosts=[]' --set launcher=srun" in line
    assert "#SBATCH --nodes=2" in done.stdout  # the script is still printed


def test_the_suggested_overrides_silence_the_warning() -> None:
    done = submit_dry_run(str(REPO / "jobs" / "cluster-digits.yaml"), "--set", "resources.hosts=[]",
                          "--set", "launcher=srun")
    assert done.exit_code == 0, done.stderr
    assert "warning" not in done.stderr


def test_a_spec_without_hosts_uses_the_allocation_silently() -> None:
    done = submit_dry_run(str(REPO / "jobs" / "slurm-digits.yaml"))
    assert done.exit_code == 0 and "warning" not in done.stderr
