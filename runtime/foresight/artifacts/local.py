"""The local-directory backend: a plain folder, a PersistentVolumeClaim in a cluster, the embedded default.

Layout: the object ``a/b/model.onnx`` is the file ``<root>/a/b/model.onnx`` and its checksum the
sidecar ``<root>/a/b/model.onnx.sha256`` in ``sha256sum`` format (so ``sha256sum -c`` works on it).
An object exists only when both files exist.

Why the write order below: a put writes data and sidecar to temporary files in the same
directory and fsyncs them, *removes the old sidecar* (the object becomes absent), renames the data
into place, then renames the new sidecar into place and fsyncs the directory. At every instant a
reader therefore sees the old complete object, no object, or the new complete object; a crash can
never leave new data next to the old checksum (or old data next to the new one) looking complete.
Reads always re-hash and compare with the sidecar, which also catches later corruption.
Concurrent writers of the same key are not coordinated: the last rename wins.
"""

from __future__ import annotations

import contextlib
import io
import os
import uuid
from pathlib import Path
from typing import IO

from foresight.artifacts.base import (
    ArtifactInfo,
    ArtifactStore,
    copy_hashing,
    normalize_key,
    sha256_bytes,
    verify_sha256,
)
from foresight.artifacts.errors import ArtifactNotFoundError, InvalidKeyError

SIDECAR_SUFFIX = ".sha256"
TMP_PREFIX = ".fs-tmp-"


class LocalArtifactStore(ArtifactStore):
    """Artifacts in a local directory (created on first write)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        self.base_uri = self.root.as_uri()

    def __repr__(self) -> str:
        return f"LocalArtifactStore(root={str(self.root)!r})"

    # -- paths ---------------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        key = normalize_key(key)
        name = key.rsplit("/", 1)[-1]
        if name.endswith(SIDECAR_SUFFIX):
            raise InvalidKeyError(key, f"names ending in {SIDECAR_SUFFIX!r} are reserved for checksums")
        if any(part.startswith(TMP_PREFIX) for part in key.split("/")):
            raise InvalidKeyError(key, f"names starting with {TMP_PREFIX!r} are reserved for temporary files")
        return self.root / key

    @staticmethod
    def _sidecar(path: Path) -> Path:
        return path.with_name(path.name + SIDECAR_SUFFIX)

    # -- writes --------------------------------------------------------------------------------

    def put_file(self, local_path: str | os.PathLike[str], key: str) -> ArtifactInfo:
        with open(local_path, "rb") as src:
            return self._put_stream(src, key)

    def put_bytes(self, data: bytes, key: str) -> ArtifactInfo:
        return self._put_stream(io.BytesIO(data), key)

    def _put_stream(self, src: IO[bytes], key: str) -> ArtifactInfo:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex
        tmp_data = path.with_name(f"{TMP_PREFIX}{token}-{path.name}")
        tmp_sum = path.with_name(f"{TMP_PREFIX}{token}-{path.name}{SIDECAR_SUFFIX}")
        sidecar = self._sidecar(path)
        try:
            with open(tmp_data, "wb") as dst:
                digest, size = copy_hashing(src, dst)
                dst.flush()
                os.fsync(dst.fileno())
            with open(tmp_sum, "w", encoding="ascii") as fh:
                fh.write(f"{digest}  {path.name}\n")
                fh.flush()
                os.fsync(fh.fileno())
            # Old checksum out first: from here until the last rename the object reads as absent.
            with contextlib.suppress(FileNotFoundError):
                sidecar.unlink()
            _fsync_dir(path.parent)
            os.replace(tmp_data, path)
            os.replace(tmp_sum, sidecar)
            _fsync_dir(path.parent)
        except BaseException:
            for leftover in (tmp_data, tmp_sum):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
            raise
        return ArtifactInfo(uri=self.uri_for(key), key=normalize_key(key), sha256=digest, size=size)

    def delete(self, key: str) -> None:
        path = self._path(key)
        # Sidecar first so a half-done delete leaves an absent object, not a checksum-less one.
        for victim in (self._sidecar(path), path):
            with contextlib.suppress(FileNotFoundError):
                victim.unlink()

    # -- reads ---------------------------------------------------------------------------------

    def stat(self, key: str) -> ArtifactInfo:
        path = self._path(key)
        recorded = self._recorded_sha256(key, path)
        try:
            size = path.stat().st_size
        except FileNotFoundError as exc:
            raise ArtifactNotFoundError(self.uri_for(key)) from exc
        return ArtifactInfo(uri=self.uri_for(key), key=normalize_key(key), sha256=recorded, size=size)

    def _recorded_sha256(self, key: str, path: Path) -> str:
        try:
            text = self._sidecar(path).read_text(encoding="ascii")
        except FileNotFoundError as exc:
            raise ArtifactNotFoundError(self.uri_for(key)) from exc
        if not path.is_file():
            raise ArtifactNotFoundError(self.uri_for(key))
        return text.split()[0].lower()

    def get_bytes(self, key: str, expected_sha256: str | None = None) -> bytes:
        path = self._path(key)
        recorded = self._recorded_sha256(key, path)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise ArtifactNotFoundError(self.uri_for(key)) from exc
        actual = sha256_bytes(data)
        verify_sha256(self.uri_for(key), actual, recorded, expected_sha256)
        return data

    def get_file(
        self, key: str, local_path: str | os.PathLike[str], expected_sha256: str | None = None
    ) -> ArtifactInfo:
        path = self._path(key)
        recorded = self._recorded_sha256(key, path)
        dest = Path(local_path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f"{TMP_PREFIX}{uuid.uuid4().hex}-{dest.name}")
        try:
            with open(path, "rb") as src, open(tmp, "wb") as dst:
                actual, size = copy_hashing(src, dst)
            verify_sha256(self.uri_for(key), actual, recorded, expected_sha256)
            os.replace(tmp, dest)
        except FileNotFoundError as exc:
            raise ArtifactNotFoundError(self.uri_for(key)) from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return ArtifactInfo(uri=self.uri_for(key), key=normalize_key(key), sha256=actual, size=size)

    def list(self, prefix: str = "") -> list[ArtifactInfo]:
        prefix = prefix.lstrip("/")
        start = self.root / prefix.rsplit("/", 1)[0] if "/" in prefix else self.root
        if not start.is_dir():
            return []
        found: list[ArtifactInfo] = []
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(TMP_PREFIX))
            names = set(filenames)
            for name in sorted(names):
                if name.startswith(TMP_PREFIX) or name.endswith(SIDECAR_SUFFIX):
                    continue
                if name + SIDECAR_SUFFIX not in names:
                    continue  # no checksum yet: a write in progress or interrupted
                key = (Path(dirpath) / name).relative_to(self.root).as_posix()
                if not key.startswith(prefix):
                    continue
                with contextlib.suppress(ArtifactNotFoundError):
                    found.append(self.stat(key))
        return sorted(found, key=lambda info: info.key)


def _fsync_dir(path: Path) -> None:
    # Makes renames and unlinks durable; not every platform can open a directory, hence best effort.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
