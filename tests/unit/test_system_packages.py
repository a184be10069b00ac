"""`make setup`'s system step: without root it installs nothing and names what to install."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "hvdrun_cli" / "buildtools" / "system_packages.sh"


def fake_bin(tmp_path: Path, installed: bool, uid: int) -> Path:
    """Stand-ins for dpkg-query and id, so the decision logic runs without touching the system."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    status = "install ok installed" if installed else "unknown ok not-installed"
    (bin_dir / "dpkg-query").write_text(f"#!/bin/sh\nprintf '%s' '{status}'\n")
    (bin_dir / "id").write_text(f"#!/bin/sh\necho {uid}\n")
    (bin_dir / "cmake").write_text("#!/bin/sh\necho cmake version 3.25.1\n")
    (bin_dir / "sudo").write_text("#!/bin/sh\nexit 1\n")  # no passwordless sudo either
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    return bin_dir


def run(tmp_path: Path, mode: str, installed: bool, uid: int) -> subprocess.CompletedProcess:
    bin_dir = fake_bin(tmp_path, installed, uid)
    env = dict(os.environ, PATH=f"{bin_dir}:/usr/bin:/bin")
    return subprocess.run(["bash", str(SCRIPT), mode], env=env, capture_output=True, text=True, timeout=30)


def test_without_root_it_names_every_missing_package(tmp_path: Path) -> None:
    done = run(tmp_path, "test", installed=False, uid=1000)
    assert done.returncode == 1
    assert "missing system packages: openmpi-bin libopenmpi-dev g++ make patch slurmctld slurmd" in done.stderr
    assert "install them as root" in done.stderr


def test_nothing_to_do_when_everything_is_present(tmp_path: Path) -> None:
    done = run(tmp_path, "runtime", installed=True, uid=1000)
    assert done.returncode == 0
    assert "all present" in done.stdout
