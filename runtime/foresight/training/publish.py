"""Publishing the trained model's directory (rank 0 only) to its output location.

Through ``foresight.artifacts`` the directory gets a ``MANIFEST.json`` listing every file's
SHA-256, which is what a ``ModelVersion`` verifies before it trusts an artifact.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .checkpoint import LocalDirStore
from .errors import TrainingConfigError

__all__ = ["ArtifactPublisher", "ModelPublisher", "PublishedModel", "open_publisher"]


@dataclass
class PublishedModel:
    uri: str
    """The model directory."""
    files: dict[str, str] = field(default_factory=dict)
    """Relative path -> sha256 of every file."""
    manifest_sha256: str | None = None
    """sha256 of ``MANIFEST.json`` (None without foresight.artifacts)."""


class ModelPublisher(Protocol):
    def publish(self, directory: Path) -> PublishedModel:
        """Upload every file under ``directory``; return where it went and the checksums."""
        ...


class ArtifactPublisher:
    """Publishes with ``ArtifactStore.put_dir`` (manifest written last, so readers never see half)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def publish(self, directory: Path) -> PublishedModel:
        info = self.store.put_dir(directory, "")
        files = {Path(f.key).name if "/" not in f.key else f.key: f.sha256 for f in info.files}
        return PublishedModel(uri=str(info.uri), files=files, manifest_sha256=str(info.manifest.sha256))


class _DirPublisher:
    """Plain copy into a local directory, used only when foresight.artifacts is not importable."""

    def __init__(self, root: str) -> None:
        self.store = LocalDirStore(root)

    def publish(self, directory: Path) -> PublishedModel:
        files = {}
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            name = path.relative_to(directory).as_posix()
            data = path.read_bytes()
            files[name] = hashlib.sha256(data).hexdigest()
            self.store.write(name, data)
        return PublishedModel(uri=self.store.uri, files=files)


def open_publisher(uri: str, s3: Any | None = None) -> ModelPublisher:
    """The publisher for an output URI (path, ``file://`` or ``s3://``)."""
    try:
        from foresight import artifacts
    except ImportError as exc:
        if uri.startswith("s3://"):
            raise TrainingConfigError(
                f"{uri}: s3:// output needs foresight.artifacts (foresight[s3])"
            ) from exc
        return _DirPublisher(uri[len("file://") :] if uri.startswith("file://") else uri)
    return ArtifactPublisher(artifacts.open_store(uri, s3=s3))
