"""Checkpoint storage that fails: a read-only directory, a full disk.

Both use real filesystems: a read-only and a tiny tmpfs mounted for the test when running as root
(the only way root itself is refused a write); without root, a directory without write permission
and a size limit on files (``RLIMIT_FSIZE``, which makes writes fail with EFBIG like a full disk).
"""
from __future__ import annotations

import os
import resource
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from tests.hvdjob_process import processes_of_run
from tests.reliability.support import JobRunner, leftovers, managed_job

pytestmark = pytest.mark.integration
IS_ROOT = os.geteuid() == 0


def _mount_tmpfs(path: Path, options: str) -> None:
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True)


def _unmount(path: Path) -> None:
    subprocess.run(["umount", str(path)], check=False)


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "read-only"
    if IS_ROOT:
        _mount_tmpfs(path, "ro,size=1m")
        yield path
        _unmount(path)
    else:
        path.mkdir(mode=0o555)
        yield path
        path.chmod(0o755)


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A directory that takes a few KiB, far less than one checkpoint."""
    path = tmp_path / "small-disk"
    if not IS_ROOT:
        pytest.skip("mounting a small filesystem needs root; the RLIMIT_FSIZE test below runs instead")
    _mount_tmpfs(path, "size=16k")
    yield path
    _unmount(path)


def test_unwritable_checkpoint_dir_is_refused_before_training(jobs: JobRunner, read_only_dir: Path) -> None:
    spec = managed_job(jobs, checkpoint={"dir": str(read_only_dir), "interval_steps": 10})
    job = jobs.run("run", str(spec), timeout=120)

    assert job.proc.returncode == 2, job.output[-3000:]
    assert "checkpoint.dir: checkpoint directory is not writable" in job.output
    assert str(read_only_dir) in job.stderr
    assert "Traceback" not in job.output
    assert " step " not in job.stdout, "training started although checkpoints cannot be saved"
    assert os.listdir(read_only_dir) == []
    assert processes_of_run(job.run_id) == []


def _assert_clean_failure_at_first_save(job, directory: Path, reason: str) -> None:
    assert job.proc.returncode == 2, job.output[-3000:]
    assert "epoch 1/6 step 5/" in job.stdout  # training ran until the first save
    assert f"checkpoint.dir: cannot save the checkpoint of step 10: {reason}" in job.stderr
    assert "Traceback" not in job.output
    assert leftovers(directory) == [] and not any(directory.glob("ckpt-*")), os.listdir(directory)
    assert processes_of_run(job.run_id) == []


def test_full_disk_fails_at_first_save_and_leaves_no_partial_file(jobs: JobRunner, full_disk: Path) -> None:
    spec = managed_job(jobs, checkpoint={"dir": str(full_disk), "interval_steps": 10})
    job = jobs.run("run", str(spec), timeout=120)
    _assert_clean_failure_at_first_save(job, full_disk, "No space left on device")
    assert os.listdir(full_disk) == []


@pytest.mark.ci_may_skip  # CI runs as root, where the real-tmpfs test above replaces this one
@pytest.mark.skipif(IS_ROOT, reason="as root the full-disk test above uses a real small tmpfs")
def test_file_size_limit_fails_at_first_save_and_leaves_no_partial_file(jobs: JobRunner, tmp_path: Path) -> None:
    """The unprivileged stand-in for a full disk: writes past 16 KiB fail (EFBIG) in every rank."""
    directory = tmp_path / "limited"
    spec = managed_job(jobs, checkpoint={"dir": str(directory), "interval_steps": 10})

    def limit_file_size() -> None:
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write instead of killing the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, 16 * 1024))

    job = jobs.start("run", str(spec), preexec_fn=limit_file_size)
    job.wait(120)
    job.find_run_dir()
    _assert_clean_failure_at_first_save(job, directory, "File too large")
