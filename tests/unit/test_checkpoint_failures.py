"""Checkpoint saves that fail on the filesystem: one clear error, nothing of the checkpoint left behind."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from hvdrun_cli.adapters import checkpoint
from hvdrun_cli.adapters.checkpoint import CheckpointStore, atomic_write
from hvdrun_cli.errors import UserInputError


class DiskFull:
    """A file whose writes fail like a full disk (the descriptor stays real so it can be closed)."""

    def __init__(self, fd: int, _mode: str) -> None:
        self.fd = fd

    def write(self, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def flush(self) -> None:
        pass

    def fileno(self) -> int:
        return self.fd

    def __enter__(self) -> "DiskFull":
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def test_a_serializer_that_hides_the_write_error_still_reports_it(tmp_path: Path, monkeypatch) -> None:
    def torch_like(f) -> None:  # torch.save turns ENOSPC into "unexpected pos ..."
        try:
            f.write(b"payload")
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598") from None

    monkeypatch.setattr(checkpoint.os, "fdopen", DiskFull)
    with pytest.raises(OSError) as raised:
        atomic_write(str(tmp_path / "ckpt.pt"), torch_like)
    assert raised.value.errno == errno.ENOSPC
    assert os.listdir(tmp_path) == []  # the temporary file is gone too


def test_failed_payload_write_is_a_clean_error_naming_checkpoint_dir(tmp_path: Path, monkeypatch) -> None:
    store = CheckpointStore(str(tmp_path), keep=2, suffix=".pt")
    monkeypatch.setattr(checkpoint.os, "fdopen", DiskFull)
    with pytest.raises(UserInputError) as raised:
        store.save(10, lambda f: f.write(b"x"), {"position": {}})
    assert str(raised.value) == (f"checkpoint.dir: cannot save the checkpoint of step 10: No space left on device "
                                 f"(got '{tmp_path}')")
    assert os.listdir(tmp_path) == []


def test_payload_whose_sidecar_cannot_be_written_is_removed(tmp_path: Path, monkeypatch) -> None:
    store = CheckpointStore(str(tmp_path), keep=2, suffix=".pt")
    store.save(10, lambda f: f.write(b"good"), {"position": {}})

    def read_only(path: str, data: object) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)

    monkeypatch.setattr(checkpoint, "atomic_write_json", read_only)
    with pytest.raises(UserInputError, match="cannot save the checkpoint of step 20: Read-only file system"):
        store.save(20, lambda f: f.write(b"new"), {"position": {}})
    assert sorted(os.listdir(tmp_path)) == ["ckpt-000000010.json", "ckpt-000000010.pt"]
    assert store.read(str(tmp_path / "ckpt-000000010.json")).step == 10  # the previous checkpoint is untouched
