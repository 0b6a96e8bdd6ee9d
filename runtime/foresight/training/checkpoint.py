"""Checkpoints: where they are stored (``CheckpointStore``), what they hold, and how resume finds one.

A checkpoint is one ``torch.save`` file holding only tensors, numbers, strings, lists and dicts,
so ``torch.load(..., weights_only=True)`` reads it without executing pickled code. It carries the
model and optimizer state, the epoch it completed, the RNG state and a fingerprint of the model
architecture; a checkpoint whose fingerprint differs from the job's model is refused, never
loaded.

Stores write atomically (a reader never sees half a file): a local directory writes a temporary
file and renames it; an object store's PUT is atomic by itself. ``s3://`` URIs go through
``foresight.artifacts`` (credentials from the environment the entry point passes in).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlparse

import torch
from torch import nn

from .errors import CheckpointMismatchError, TrainingConfigError

__all__ = [
    "CHECKPOINT_FORMAT",
    "ArtifactCheckpointStore",
    "Checkpoint",
    "CheckpointStore",
    "LocalDirStore",
    "architecture_fingerprint",
    "checkpoint_name",
    "latest_checkpoint",
    "load_checkpoint",
    "open_store",
    "prune_checkpoints",
    "save_checkpoint",
    "state_dict_sha256",
]

CHECKPOINT_FORMAT = 1
_NAME = re.compile(r"^epoch-(\d{6})\.pt$")


@runtime_checkable
class CheckpointStore(Protocol):
    """A flat namespace of named blobs (checkpoints, or the files of a trained model)."""

    @property
    def uri(self) -> str:
        """Where the store points, for messages and for the artifact URI of a file."""
        ...

    def write(self, name: str, data: bytes) -> str:
        """Store ``data`` under ``name`` atomically; return the URI of the stored object."""
        ...

    def read(self, name: str) -> bytes:
        """The bytes stored under ``name``; ``FileNotFoundError`` if absent."""
        ...

    def names(self) -> list[str]:
        """Names of the stored objects, sorted."""
        ...

    def delete(self, name: str) -> None:
        """Remove ``name`` (no error if absent)."""
        ...


class LocalDirStore:
    """A directory on a local disk or a mounted PVC."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def uri(self) -> str:
        return self.root.resolve().as_uri()

    def write(self, name: str, data: bytes) -> str:
        target = self.root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        # Write next to the target, fsync, then rename: a crash leaves either the old file or the
        # new one, never a truncated checkpoint that resume would choke on.
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target.resolve().as_uri()

    def read(self, name: str) -> bytes:
        return (self.root / name).read_bytes()

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_file() and not p.name.startswith("."))

    def delete(self, name: str) -> None:
        (self.root / name).unlink(missing_ok=True)


class ArtifactCheckpointStore:
    """A ``foresight.artifacts`` store (S3 / MinIO, or any backend) seen as a ``CheckpointStore``."""

    def __init__(self, store: Any) -> None:
        self._store = store

    @property
    def uri(self) -> str:
        return str(self._store.base_uri).rstrip("/")

    def write(self, name: str, data: bytes) -> str:
        return str(self._store.put_bytes(data, name).uri)

    def read(self, name: str) -> bytes:
        from foresight.artifacts import ArtifactNotFoundError

        try:
            return bytes(self._store.get_bytes(name))
        except ArtifactNotFoundError as exc:
            raise FileNotFoundError(f"{self.uri}/{name}") from exc

    def names(self) -> list[str]:
        return sorted(str(info.key) for info in self._store.list("") if "/" not in str(info.key))

    def delete(self, name: str) -> None:
        self._store.delete(name)


def open_store(uri: str, s3: Any | None = None) -> CheckpointStore:
    """A store for ``uri``: a plain path or ``file://`` -> local directory, ``s3://`` -> artifacts.

    ``s3`` is a ``foresight.artifacts.S3Options`` (endpoint, credentials), built by the entry point
    from its environment.
    """
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return LocalDirStore(parsed.path if parsed.scheme else uri)
    if parsed.scheme == "s3":
        try:
            from foresight import artifacts
        except ImportError as exc:
            raise TrainingConfigError(
                f"{uri}: s3:// needs the foresight.artifacts package and minio (foresight[s3]); "
                "use a file:// or PVC path meanwhile"
            ) from exc
        return ArtifactCheckpointStore(artifacts.open_store(uri, s3=s3))
    raise TrainingConfigError(
        f"unsupported store URI {uri!r}: use a path, file:///path or s3://bucket/prefix"
    )


def architecture_fingerprint(architecture: Mapping[str, Any], model: nn.Module) -> str:
    """A short hash of the architecture config plus every parameter's name and shape.

    Learning rate, epochs and the like are deliberately left out: a job resumed with a new
    learning rate may reuse its checkpoints; a job with another layer size may not.
    """
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    payload = json.dumps({"architecture": architecture, "shapes": shapes}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def state_dict_sha256(model: nn.Module) -> str:
    """Hash of a model's weights (name, dtype, shape, bytes), stable across processes and ranks."""
    h = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{key}:{t.dtype}:{list(t.shape)}".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


@dataclass
class Checkpoint:
    """The state needed to continue training after ``epoch`` completed epochs."""

    epoch: int
    fingerprint: str
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    rng_torch: torch.Tensor
    rng_cuda: list[torch.Tensor] = field(default_factory=list)
    history: list[dict[str, float]] = field(default_factory=list)
    """Per-epoch metrics so far (loss continuity across restarts)."""


def checkpoint_name(epoch: int) -> str:
    return f"epoch-{epoch:06d}.pt"


def save_checkpoint(store: CheckpointStore, ckpt: Checkpoint) -> str:
    """Serialise ``ckpt`` (weights-only-safe types) into ``store``; returns its URI."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "epoch": ckpt.epoch,
        "fingerprint": ckpt.fingerprint,
        "model": {k: v.detach().cpu() for k, v in ckpt.model.items()},
        "optimizer": ckpt.optimizer,
        "rng_torch": ckpt.rng_torch,
        "rng_cuda": ckpt.rng_cuda,
        "history": ckpt.history,
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    return store.write(checkpoint_name(ckpt.epoch), buf.getvalue())


def load_checkpoint(store: CheckpointStore, name: str, expected_fingerprint: str) -> Checkpoint:
    """Read a checkpoint, refusing one written for another architecture."""
    data = store.read(name)
    # weights_only: a checkpoint location may be shared or writable by others; never unpickle code.
    payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointMismatchError(name, expected_fingerprint, f"<unknown format in {store.uri}/{name}>")
    found = str(payload.get("fingerprint"))
    if found != expected_fingerprint:
        raise CheckpointMismatchError(f"{store.uri}/{name}", expected_fingerprint, found)
    return Checkpoint(
        epoch=int(payload["epoch"]),
        fingerprint=found,
        model=payload["model"],
        optimizer=payload["optimizer"],
        rng_torch=payload["rng_torch"],
        rng_cuda=list(payload.get("rng_cuda", [])),
        history=list(payload.get("history", [])),
    )


def _epochs(store: CheckpointStore) -> list[tuple[int, str]]:
    found = []
    for name in store.names():
        m = _NAME.match(name)
        if m:
            found.append((int(m.group(1)), name))
    return sorted(found)


def latest_checkpoint(store: CheckpointStore, expected_fingerprint: str) -> Checkpoint | None:
    """The newest checkpoint in ``store``, or ``None`` when there is none."""
    found = _epochs(store)
    if not found:
        return None
    return load_checkpoint(store, found[-1][1], expected_fingerprint)


def prune_checkpoints(store: CheckpointStore, keep: int) -> list[str]:
    """Delete all but the newest ``keep`` checkpoints; returns the deleted names."""
    found = _epochs(store)
    doomed = [name for _, name in found[: max(0, len(found) - keep)]]
    for name in doomed:
        store.delete(name)
    return doomed
