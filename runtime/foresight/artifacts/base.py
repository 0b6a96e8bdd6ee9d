"""The ``ArtifactStore`` interface shared by every backend, plus checksums, keys and model directories.

A store holds immutable-looking objects under string keys (``models/lstm/v3/model.onnx``). Every
object carries its SHA-256, recorded at write time by the backend, and every read is checked
against it. A *directory* (a model folder) is a set of objects under a prefix plus a
``MANIFEST.json`` written last; readers trust only a directory that has a manifest, so an upload
that died half way is never mistaken for a model.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from foresight.artifacts.errors import (
    ArtifactNotFoundError,
    ChecksumMismatchError,
    IncompleteDirectoryError,
    InvalidKeyError,
)

MANIFEST_NAME = "MANIFEST.json"
MANIFEST_FORMAT = 1
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ArtifactInfo:
    """One stored object: where it is, its key in the store, its SHA-256 (hex) and size in bytes."""

    uri: str
    key: str
    sha256: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DirectoryInfo:
    """A model directory: its URI, the manifest's own info and the files it lists (relative paths)."""

    uri: str
    manifest: ArtifactInfo
    files: list[ArtifactInfo] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "manifest": self.manifest.to_dict(),
            "files": [f.to_dict() for f in self.files],
        }


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def copy_hashing(src: IO[bytes], dst: IO[bytes]) -> tuple[str, int]:
    """Copy a stream and return (sha256 hex, size) of what went through."""
    digest = hashlib.sha256()
    size = 0
    for chunk in iter(lambda: src.read(_CHUNK), b""):
        digest.update(chunk)
        dst.write(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def normalize_key(key: str) -> str:
    """Return the canonical form of an object key, or raise ``InvalidKeyError``.

    Keys are relative POSIX paths. Absolute keys, ``..`` and empty segments are refused so a key
    from a spec can never escape the store's root (a local directory or a bucket prefix).
    """
    if not key or key.strip() == "":
        raise InvalidKeyError(key, "a key must not be empty")
    if key.startswith("/"):
        raise InvalidKeyError(key, "a key is relative to the store root; drop the leading '/'")
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise InvalidKeyError(key, "empty, '.' and '..' path segments are not allowed")
    return "/".join(parts)


def join_key(prefix: str, name: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/{name}" if prefix else name


def normalize_prefix(prefix: str) -> str:
    """Like ``normalize_key`` for a directory prefix, where ``""`` means the store root."""
    prefix = prefix.strip("/")
    return normalize_key(prefix) if prefix else ""


class ArtifactStore(ABC):
    """An object store for model artifacts with SHA-256 on every object.

    Backends implement the object operations; ``put_dir`` / ``get_dir`` are built on them here.
    Implementations must make each ``put_*`` atomic: a reader sees either the old complete object,
    no object, or the new complete object, never a partial one that looks complete.
    """

    #: Base URI of the store (``file:///abs/dir`` or ``s3://bucket/prefix``); keys are appended.
    base_uri: str

    def uri_for(self, key: str) -> str:
        key = normalize_prefix(key)
        return self.base_uri.rstrip("/") + ("/" + key if key else "")

    @abstractmethod
    def put_file(self, local_path: str | os.PathLike[str], key: str) -> ArtifactInfo:
        """Upload a local file under ``key``, recording its SHA-256."""

    @abstractmethod
    def put_bytes(self, data: bytes, key: str) -> ArtifactInfo:
        """Store ``data`` under ``key``, recording its SHA-256."""

    @abstractmethod
    def get_file(
        self, key: str, local_path: str | os.PathLike[str], expected_sha256: str | None = None
    ) -> ArtifactInfo:
        """Download ``key`` to ``local_path`` (atomically) and verify it.

        The content is checked against the recorded SHA-256 and, when given, ``expected_sha256``
        (``ChecksumMismatchError`` on either mismatch; ``local_path`` is then left untouched).
        """

    @abstractmethod
    def get_bytes(self, key: str, expected_sha256: str | None = None) -> bytes:
        """Read ``key`` into memory, verified like ``get_file``."""

    @abstractmethod
    def stat(self, key: str) -> ArtifactInfo:
        """Info of a complete object, or ``ArtifactNotFoundError``."""

    @abstractmethod
    def list(self, prefix: str = "") -> list[ArtifactInfo]:
        """Complete objects whose key starts with ``prefix`` (a plain string prefix), sorted by key."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; removing a missing key is not an error (as in S3)."""

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except ArtifactNotFoundError:
            return False
        return True

    # -- model directories -------------------------------------------------------------------

    def put_dir(self, local_dir: str | os.PathLike[str], prefix: str) -> DirectoryInfo:
        """Upload every file under ``local_dir`` to ``prefix/`` and then write ``MANIFEST.json``.

        An older manifest under the prefix is deleted first, so while the upload runs readers see
        "no directory" rather than an old manifest that mismatches the new files.
        """
        root = Path(local_dir)
        if not root.is_dir():
            raise FileNotFoundError(f"put_dir: {root} is not a directory; pass the model folder to upload")
        prefix = normalize_prefix(prefix)
        manifest_key = join_key(prefix, MANIFEST_NAME)
        self.delete(manifest_key)
        files: builtins.list[ArtifactInfo] = []
        entries: list[dict[str, Any]] = []
        for path in _walk_files(root):
            rel = path.relative_to(root).as_posix()
            if rel == MANIFEST_NAME:
                # The manifest is ours to write; a stale copy in the source folder is not uploaded.
                continue
            info = self.put_file(path, join_key(prefix, rel))
            files.append(info)
            entries.append({"path": rel, "sha256": info.sha256, "size": info.size})
        manifest = {"format": MANIFEST_FORMAT, "files": entries}
        manifest_info = self.put_bytes(json.dumps(manifest, indent=2, sort_keys=True).encode(), manifest_key)
        return DirectoryInfo(uri=self.uri_for(prefix), manifest=manifest_info, files=files)

    def read_manifest(self, prefix: str) -> builtins.list[dict[str, Any]]:
        """The file entries (path, sha256, size) of the directory at ``prefix``."""
        prefix = normalize_prefix(prefix)
        try:
            raw = self.get_bytes(join_key(prefix, MANIFEST_NAME))
        except ArtifactNotFoundError as exc:
            raise IncompleteDirectoryError(self.uri_for(prefix)) from exc
        manifest = json.loads(raw)
        if manifest.get("format") != MANIFEST_FORMAT:
            raise ValueError(
                f"{self.uri_for(prefix)}/{MANIFEST_NAME} has format {manifest.get('format')!r}; this "
                f"runtime reads format {MANIFEST_FORMAT}: upgrade the runtime image"
            )
        entries: builtins.list[dict[str, Any]] = manifest["files"]
        for entry in entries:
            normalize_key(entry["path"])  # a manifest must not point outside its directory
        return entries

    def has_dir(self, prefix: str) -> bool:
        return self.exists(join_key(normalize_prefix(prefix), MANIFEST_NAME))

    def get_dir(self, prefix: str, local_dir: str | os.PathLike[str]) -> DirectoryInfo:
        """Download the directory at ``prefix`` into ``local_dir`` (which must not exist or be empty).

        Only a directory with a manifest is read, each file is verified against the manifest's
        SHA-256, and the files land in a temporary sibling folder that is renamed into place at the
        end, so ``local_dir`` is either complete or absent.
        """
        prefix = normalize_prefix(prefix)
        entries = self.read_manifest(prefix)
        target = Path(local_dir)
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise FileExistsError(f"get_dir: {target} exists and is not an empty directory; pass a new path")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
        try:
            files = []
            for entry in entries:
                dest = staging / entry["path"]
                dest.parent.mkdir(parents=True, exist_ok=True)
                files.append(
                    self.get_file(join_key(prefix, entry["path"]), dest, expected_sha256=entry["sha256"])
                )
            if target.exists():
                target.rmdir()
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        manifest = self.stat(join_key(prefix, MANIFEST_NAME))
        return DirectoryInfo(uri=self.uri_for(prefix), manifest=manifest, files=files)


def verify_sha256(uri: str, actual: str, *expected: str | None) -> None:
    for want in expected:
        if want is not None and want.lower() != actual:
            raise ChecksumMismatchError(uri, want.lower(), actual)


def _walk_files(root: Path) -> Iterator[Path]:
    """Every file under ``root``, sorted by relative path so manifests are deterministic."""
    found = [Path(dirpath) / name for dirpath, _, filenames in os.walk(root) for name in filenames]
    yield from sorted(found, key=lambda p: p.relative_to(root).as_posix())
