"""The local-directory backend: a plain folder, a PersistentVolumeClaim in a cluster, the embedded default.

Layout: the object ``a/b/model.onnx`` is the file ``<root>/a/b/model.onnx`` and its checksum the
sidecar ``<root>/a/b/model.onnx.sha256`` in ``sha256sum`` format (so ``sha256sum -c`` works on it).
An object exists only when both files exist.

Overwrites are atomic for readers. Data and sidecar are two files, and no rename replaces two files
at once, so the sidecar may list more than one checksum while an object is being replaced, and the
write order keeps this invariant: *the installed sidecar always lists the checksum of the installed
data*. A write copies the data into a temporary file in the same directory (and fsyncs it), then,
under a lock on the directory:

1. when an object is there: the sidecar becomes ``new`` plus the old checksum(s) (accepting the old
   data and the new), the data is renamed into place, and the sidecar becomes ``new`` alone;
2. when none is: the data is renamed into place, then its sidecar (the object appears with it).

A reader opens the sidecar, then the data, and accepts the data when its SHA-256 is one the
sidecar lists. When it is not, the reader checks whether either file was replaced while it read
(the open files' inodes against the paths'): if so it reads again; if not, the two were installed
together all along, so by the invariant the bytes are damaged (``ChecksumMismatchError``). Readers
therefore never see an object missing or a mismatch because of an overwrite, and a writer killed
at any step leaves the old object or the new one, complete. ``sha256sum -c`` reports one line as
failed only while a write is between its renames (or after one was killed there; the next write
of the key tidies it).

The directory lock (``flock`` on the directory) serialises only the few renames of concurrent
writers, so that the invariant also holds when two of them replace the same key (the last one
wins); where a filesystem cannot lock a directory, writers are not coordinated.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TypeVar

from foresight.artifacts.base import (
    ArtifactInfo,
    ArtifactStore,
    copy_hashing,
    normalize_key,
    sha256_bytes,
    verify_sha256,
)
from foresight.artifacts.errors import (
    ArtifactNotFoundError,
    ChecksumMismatchError,
    InvalidKeyError,
    StoreUnavailableError,
)

try:
    import fcntl
except ImportError:  # not on Windows: writers there are not coordinated
    fcntl = None  # type: ignore[assignment]

SIDECAR_SUFFIX = ".sha256"
TMP_PREFIX = ".fs-tmp-"
READ_ATTEMPTS = 50
"""Reads of one object that a stream of overwrites may spoil before a reader gives up (each retry
needs a whole write to complete between the reader's two opens, so this is never reached in
practice)."""

T = TypeVar("T")


class _Mismatch(Exception):
    """The data read is not one the sidecar lists (an overwrite in between, or damage)."""

    def __init__(self, recorded: tuple[str, ...], actual: str) -> None:
        self.recorded = recorded
        self.actual = actual


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
        tmp_data = path.with_name(f"{TMP_PREFIX}{uuid.uuid4().hex}-{path.name}")
        try:
            with open(tmp_data, "wb") as dst:
                digest, size = copy_hashing(src, dst)
                dst.flush()
                os.fsync(dst.fileno())
            with _writer_lock(path.parent):
                self._install(tmp_data, path, digest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp_data.unlink()  # gone after a successful install: this only tidies a failed write
        return ArtifactInfo(uri=self.uri_for(key), key=normalize_key(key), sha256=digest, size=size)

    def _install(self, tmp_data: Path, path: Path, digest: str) -> None:
        """Rename the new data into place in the order the module docstring gives (lock held)."""
        sidecar = self._sidecar(path)
        old = _recorded(sidecar) if path.is_file() else ()
        if old:
            both = (digest, *(d for d in old if d != digest))
            _write_sidecar(sidecar, path.name, both)
            _fsync_dir(path.parent)
            os.replace(tmp_data, path)
            if both != (digest,):
                _write_sidecar(sidecar, path.name, (digest,))
        else:
            with contextlib.suppress(FileNotFoundError):
                sidecar.unlink()  # a checksum left without its data (removed by hand) must not match
            os.replace(tmp_data, path)
            _fsync_dir(path.parent)
            _write_sidecar(sidecar, path.name, (digest,))
        _fsync_dir(path.parent)

    def delete(self, key: str) -> None:
        path = self._path(key)
        with _writer_lock(path.parent):
            # Sidecar first so a half-done delete leaves an absent object, not a checksum-less one.
            for victim in (self._sidecar(path), path):
                with contextlib.suppress(FileNotFoundError):
                    victim.unlink()

    # -- reads ---------------------------------------------------------------------------------

    def _read(self, key: str, body: Callable[[IO[bytes], tuple[str, ...], Callable[[], bool]], T]) -> T:
        """Open the sidecar, then the data, and return ``body(data, recorded, unchanged)``.

        ``body`` raises :class:`_Mismatch` when the data is not one the sidecar lists; the read is
        then retried if a write replaced either file meanwhile, and is a ``ChecksumMismatchError``
        if none did. ``unchanged()`` says whether both open files are still the installed ones.
        """
        path = self._path(key)
        sidecar = self._sidecar(path)
        for attempt in range(READ_ATTEMPTS):
            with contextlib.ExitStack() as files:
                try:
                    sums = files.enter_context(open(sidecar, "rb"))
                    data = files.enter_context(open(path, "rb"))
                except FileNotFoundError as exc:
                    raise ArtifactNotFoundError(self.uri_for(key)) from exc

                def unchanged(sums: IO[bytes] = sums, data: IO[bytes] = data) -> bool:
                    return _installed(sums, sidecar) and _installed(data, path)

                try:
                    return body(data, _parse_sidecar(sums.read()), unchanged)
                except _Mismatch as exc:
                    if unchanged():
                        expected = exc.recorded[0] if exc.recorded else "(none recorded)"
                        raise ChecksumMismatchError(self.uri_for(key), expected, exc.actual) from None
            if attempt >= 3:
                time.sleep(0.002)  # a burst of overwrites: let one finish
        raise StoreUnavailableError(
            str(self.root), f"{key} was replaced {READ_ATTEMPTS} times while it was being read"
        )

    def stat(self, key: str) -> ArtifactInfo:
        def body(data: IO[bytes], recorded: tuple[str, ...], unchanged: Callable[[], bool]) -> ArtifactInfo:
            size = os.fstat(data.fileno()).st_size
            if len(recorded) == 1 and unchanged():
                digest = recorded[0]  # installed together, so consistent: no need to hash
            else:  # a write between its renames: which of the listed checksums is this data's?
                digest = _sha256_stream(data)
                _check(recorded, digest)
            return ArtifactInfo(uri=self.uri_for(key), key=normalize_key(key), sha256=digest, size=size)

        return self._read(key, body)

    def get_bytes(self, key: str, expected_sha256: str | None = None) -> bytes:
        def body(data: IO[bytes], recorded: tuple[str, ...], unchanged: Callable[[], bool]) -> bytes:
            content = data.read()
            actual = sha256_bytes(content)
            _check(recorded, actual)
            verify_sha256(self.uri_for(key), actual, expected_sha256)
            return content

        return self._read(key, body)

    def get_file(
        self, key: str, local_path: str | os.PathLike[str], expected_sha256: str | None = None
    ) -> ArtifactInfo:
        dest = Path(local_path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f"{TMP_PREFIX}{uuid.uuid4().hex}-{dest.name}")

        def body(data: IO[bytes], recorded: tuple[str, ...], unchanged: Callable[[], bool]) -> ArtifactInfo:
            with open(tmp, "wb") as dst:
                actual, size = copy_hashing(data, dst)
            _check(recorded, actual)
            verify_sha256(self.uri_for(key), actual, expected_sha256)
            os.replace(tmp, dest)
            return ArtifactInfo(uri=self.uri_for(key), key=normalize_key(key), sha256=actual, size=size)

        try:
            return self._read(key, body)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

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


def _sha256_stream(src: IO[bytes]) -> str:
    digest = hashlib.sha256()
    for chunk in iter(lambda: src.read(1024 * 1024), b""):
        digest.update(chunk)
    return digest.hexdigest()


def _check(recorded: tuple[str, ...], actual: str) -> None:
    if actual not in recorded:
        raise _Mismatch(recorded, actual)


def _parse_sidecar(raw: bytes) -> tuple[str, ...]:
    """The checksums a sidecar lists (``sha256sum`` lines: ``<hex>  <name>``), newest first."""
    return tuple(
        line.split()[0].decode("ascii", "replace").lower() for line in raw.splitlines() if line.split()
    )


def _recorded(sidecar: Path) -> tuple[str, ...]:
    try:
        return _parse_sidecar(sidecar.read_bytes())
    except FileNotFoundError:
        return ()


def _write_sidecar(sidecar: Path, name: str, digests: tuple[str, ...]) -> None:
    """Replace ``sidecar`` (atomically: a temporary file renamed over it) with one line per digest."""
    tmp = sidecar.with_name(f"{TMP_PREFIX}{uuid.uuid4().hex}-{sidecar.name}")
    try:
        with open(tmp, "w", encoding="ascii") as fh:
            fh.writelines(f"{digest}  {name}\n" for digest in digests)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, sidecar)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _installed(opened: IO[bytes], path: Path) -> bool:
    """Whether ``path`` is still the file ``opened`` was opened from (not replaced or removed since).

    The open file keeps its inode alive, so a new file at ``path`` cannot reuse its number.
    """
    mine = os.fstat(opened.fileno())
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    return (mine.st_dev, mine.st_ino) == (now.st_dev, now.st_ino)


@contextlib.contextmanager
def _writer_lock(directory: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``directory`` (best effort: see the module docstring)."""
    if fcntl is None:
        yield
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        with contextlib.suppress(OSError):  # a filesystem that cannot lock a directory
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


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
