"""Checkpoint files on disk, independent of the framework that fills them.

A checkpoint is a payload (``ckpt-000000120.pt`` or ``.npz``) plus a JSON sidecar
(``ckpt-000000120.json``) holding the step, metadata and the payload's SHA-256. Both are written
atomically (temp file in the same directory, fsync, ``os.replace``), payload first: the sidecar is
the commit record, so a crash mid-write leaves at worst an orphan payload that is never loaded.
On resume the newest checkpoint whose sidecar parses, whose hash matches and whose payload loads
wins; anything else is skipped with a warning, so one torn or corrupt file costs one interval of
progress, not the run. A save that fails (full disk, directory gone read-only) leaves no file of that
checkpoint behind and ends the run with one clear error naming ``checkpoint.dir``.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Dict, List, Mapping, Optional, Tuple, TypeVar

from hvdrun_cli.contract import CHECKPOINTS_DIR
from hvdrun_cli.errors import Problem, UserInputError
from hvdrun_cli.spec.model import JobSpec

T = TypeVar("T")
_NAME = re.compile(r"^ckpt-(\d+)\.json$")
SIDECAR_FORMAT = 1


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_dir(directory: str) -> None:
    """Make a rename durable; not every filesystem allows opening a directory, which is fine."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class _RecordingFile:
    """A file that remembers the first OSError of a write.

    Serializers such as ``torch.save`` turn a failed write (ENOSPC) into an unrelated error
    ("unexpected pos ..."); the recorded OSError lets the caller report the real cause.
    """

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.error: Optional[OSError] = None

    def write(self, data: Any) -> int:
        try:
            return self._raw.write(data)
        except OSError as exc:
            self.error = self.error or exc
            raise

    def flush(self) -> None:
        try:
            self._raw.flush()
        except OSError as exc:
            self.error = self.error or exc
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


def atomic_write(path: str, write: Callable[[BinaryIO], None]) -> None:
    """Write ``path`` so readers see the old file or the complete new one, never a torn one.

    A write that fails because of the filesystem raises that OSError, whatever the serializer made of it.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    recording: Optional[_RecordingFile] = None
    try:
        with os.fdopen(fd, "wb") as f:
            recording = _RecordingFile(f)
            write(recording)  # type: ignore[arg-type]
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if recording is not None and recording.error is not None and not isinstance(exc, OSError):
            raise recording.error from exc
        raise
    _fsync_dir(directory)


def atomic_write_json(path: str, data: Mapping[str, Any]) -> None:
    text = json.dumps(data, indent=1, sort_keys=True) + "\n"
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


@dataclass(frozen=True)
class Position:
    """Where training stands: optimizer steps done in total and within the current epoch.

    With the seeded per-epoch data order this is all a resume needs to skip exactly the batches
    already trained on.
    """

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0

    def normalized(self, steps_per_epoch: int) -> "Position":
        """A finished epoch is the start of the next one."""
        if steps_per_epoch > 0 and self.step_in_epoch >= steps_per_epoch:
            return Position(self.epoch + 1, 0, self.global_step)
        return self

    def as_dict(self) -> Dict[str, int]:
        return {"epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "global_step": self.global_step}

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> "Position":
        return Position(int(data["epoch"]), int(data["step_in_epoch"]), int(data["global_step"]))


def checkpoint_dir(spec: JobSpec) -> str:
    """The spec's checkpoint directory, or ``<run_root>/<name>/checkpoints`` by default."""
    if spec.checkpoint.dir:
        return os.path.abspath(spec.checkpoint.dir)
    return os.path.abspath(os.path.join(spec.run_root, spec.name, CHECKPOINTS_DIR))


@dataclass(frozen=True)
class Checkpoint:
    """One committed checkpoint: its step, payload file and sidecar metadata."""

    step: int
    payload: str
    meta: Dict[str, Any]


class CheckpointStore:
    """The checkpoint directory of one job (written by rank 0 only)."""

    def __init__(self, directory: str, keep: int, suffix: str) -> None:
        self.directory = os.path.abspath(directory)
        self.keep = keep
        self.suffix = suffix

    def ensure_writable(self) -> None:
        """Fail before training, not an hour in, when checkpoints could not be saved."""
        try:
            os.makedirs(self.directory, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=self.directory)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise UserInputError(Problem(f"checkpoint directory is not writable: {exc.strerror or exc}",
                                         key="checkpoint.dir", got=self.directory)) from exc

    def payload_path(self, step: int) -> str:
        return os.path.join(self.directory, f"ckpt-{step:09d}{self.suffix}")

    @staticmethod
    def sidecar_path(payload: str) -> str:
        return os.path.splitext(payload)[0] + ".json"

    def save(self, step: int, write_payload: Callable[[BinaryIO], None], meta: Mapping[str, Any]) -> str:
        """Write payload then sidecar atomically, drop old checkpoints; return the payload path.

        On a filesystem error nothing of this step stays behind (a payload whose sidecar could not
        be written is removed with it) and the error names ``checkpoint.dir``.
        """
        payload = self.payload_path(step)
        try:
            atomic_write(payload, write_payload)
            sidecar = {
                **meta,
                "format": SIDECAR_FORMAT,
                "step": step,
                "payload": os.path.basename(payload),
                "sha256": sha256_of(payload),
                "created_unix_time": time.time(),
            }
            atomic_write_json(self.sidecar_path(payload), sidecar)
        except OSError as exc:
            for path in (self.sidecar_path(payload), payload):
                try:
                    os.unlink(path)
                except OSError:
                    pass
            raise UserInputError(Problem(f"cannot save the checkpoint of step {step}: {exc.strerror or exc}",
                                         key="checkpoint.dir", got=self.directory)) from exc
        self.prune()
        return payload

    def committed(self) -> List[Tuple[int, str]]:
        """(step, sidecar path) of every checkpoint in the directory, newest first."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        found = [(int(m.group(1)), os.path.join(self.directory, n)) for n in names if (m := _NAME.match(n))]
        return sorted(found, reverse=True)

    def prune(self) -> None:
        """Keep the newest ``keep`` checkpoints (0 keeps all); the sidecar goes first, like a commit undone."""
        if self.keep <= 0:
            return
        for _, sidecar in self.committed()[self.keep:]:
            payload = os.path.splitext(sidecar)[0] + self.suffix
            for path in (sidecar, payload):
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass

    def read(self, sidecar: str) -> Checkpoint:
        """Parse and verify one checkpoint; raises ValueError/OSError when it cannot be trusted."""
        with open(sidecar, encoding="utf-8") as f:
            meta = json.load(f)
        if not isinstance(meta, dict) or "step" not in meta or "sha256" not in meta:
            raise ValueError("sidecar is missing step/sha256")
        payload = os.path.join(os.path.dirname(sidecar), str(meta.get("payload", "")))
        if not os.path.isfile(payload):
            raise ValueError(f"payload {os.path.basename(payload)} is missing")
        if sha256_of(payload) != meta["sha256"]:
            raise ValueError(f"payload {os.path.basename(payload)} does not match its recorded SHA-256")
        return Checkpoint(int(meta["step"]), payload, meta)

    def load_newest(self, load: Callable[[Checkpoint], T]) -> Optional[Tuple[Checkpoint, T]]:
        """Load the newest checkpoint that verifies and loads; warn about each one skipped."""
        for _, sidecar in self.committed():
            try:
                checkpoint = self.read(sidecar)
                return checkpoint, load(checkpoint)
            except Exception as exc:  # a damaged file can fail in many ways; each means "skip it"
                warn(f"skipping checkpoint {os.path.basename(sidecar)}: {exc}")
        return None

    def load_path(self, path: str, load: Callable[[Checkpoint], T]) -> Tuple[Checkpoint, T]:
        """Load the checkpoint the user named (payload or sidecar); failure is their input error."""
        path = os.path.abspath(path)
        sidecar = self.sidecar_path(path)
        try:
            if os.path.isfile(sidecar):
                checkpoint = self.read(sidecar)
            elif os.path.isfile(path):
                checkpoint = Checkpoint(_step_from_name(path), path, {})
            else:
                raise ValueError("no such file")
            return checkpoint, load(checkpoint)
        except Exception as exc:
            raise UserInputError(Problem(f"cannot resume from this checkpoint: {exc}", key="checkpoint.resume",
                                         got=path)) from exc


def _step_from_name(path: str) -> int:
    match = re.search(r"ckpt-(\d+)", os.path.basename(path))
    return int(match.group(1)) if match else 0
