"""Reading a library from any of its three forms, safely and within size limits.

The forms (docs/library-format.md):

- **archive**: a ``.tar.gz`` holding ``library.json`` (the manifest), ``cases.json`` (a JSON array)
  and, optionally, ``models/<name>/...``; the files may sit under one top-level directory;
- **directory**: the same files in a folder (what ``foresight library pack`` turns into an archive);
- **single document**: one JSON object, the manifest with ``"cases": [...]`` inline and no models
  (the form a ConfigMap key holds; a ConfigMap is at most 1 MiB).

Nothing here trusts its input. An archive is never handed to ``extractall``: each member is checked
before it is written (only regular files and directories; no absolute paths, no ``..``, no links,
no devices, no name twice) and the bytes written are counted, so a gzip bomb stops at
:attr:`Limits.max_total_bytes`. A cases file above :attr:`Limits.max_cases_bytes` is refused
before it is parsed, which bounds the memory a library can take. JSON with ``NaN``, ``Infinity``
or a key given twice in one object is malformed here (Python would accept the first two and
silently keep the last value of the third).
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any, Literal

from .errors import LibraryError, LibraryReason
from .records import CASES_FILE, MANIFEST_FILE

__all__ = ["Form", "Limits", "RawLibrary", "file_sha256", "parse_json", "read_library"]

MiB = 1024 * 1024
_CHUNK = 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"

Form = Literal["archive", "directory", "document"]


@dataclass(frozen=True)
class Limits:
    """How large a library may be.

    max_archive_bytes: the file as fetched (compressed), in bytes. 64 MiB: room for a few small
    pre-trained models; a download is cut off there.
    max_cases_bytes: the cases (``cases.json``, or the whole single document), uncompressed.
    16 MiB is about 20,000 cases of seed 000's size: parsed into Python objects that takes a few
    hundred MiB, which is what a fetch pod may use; split a bigger library into several.
    max_total_bytes: everything in an archive, uncompressed (models included).
    max_members: files and directories in an archive.
    """

    max_archive_bytes: int = 64 * MiB
    max_cases_bytes: int = 16 * MiB
    max_total_bytes: int = 256 * MiB
    max_members: int = 2000


@dataclass
class RawLibrary:
    """A library as read, before verification: the manifest and cases as parsed JSON."""

    form: Form
    checksum: str
    """sha256 of the file (archive or document); of the sorted file list with checksums for a directory."""
    size_bytes: int
    manifest: dict[str, Any]
    cases: list[Any]
    root: Path | None = None
    """Where the library's files lie (models): the directory, or the archive's extracted root."""
    files: dict[str, int] = field(default_factory=dict)
    """Relative path -> size of every file under ``root``."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fail(reason: LibraryReason, message: str) -> LibraryError:
    return LibraryError(reason, message)


def _size_text(n: int) -> str:
    return f"{n / MiB:.1f} MiB" if n >= MiB else f"{n} bytes"


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key!r} appears twice in one object")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(data: bytes, what: str) -> Any:
    """Parse strict JSON (UTF-8, no NaN / Infinity, no duplicate keys) or raise ``InvalidArchive``."""
    try:
        text = data.decode("utf-8-sig")
        return json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        raise _fail(
            LibraryReason.INVALID_ARCHIVE,
            f"{what} is not UTF-8 text ({exc.reason} at byte {exc.start}): save it as UTF-8 JSON",
        ) from exc
    except json.JSONDecodeError as exc:
        raise _fail(
            LibraryReason.INVALID_ARCHIVE,
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} "
            f"column {exc.colno}; fix it (python -m json.tool {what} shows where)",
        ) from exc
    except ValueError as exc:  # from the hooks above
        raise _fail(LibraryReason.INVALID_ARCHIVE, f"{what} is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise _fail(LibraryReason.INVALID_ARCHIVE, f"{what} nests too deeply to be a library") from exc


def _read_bounded(path: Path, limit: int, what: str, hint: str) -> bytes:
    size = path.stat().st_size
    if size > limit:
        raise _fail(
            LibraryReason.TOO_LARGE,
            f"{what} is {_size_text(size)}, above the limit of {_size_text(limit)}: {hint}",
        )
    return path.read_bytes()


_CASES_HINT = (
    "split the library into several smaller ones (each a library of its own name), or drop cases; "
    "`foresight library verify --max-cases-mib N` checks a bigger one offline"
)


def read_library(path: Path, workdir: Path, limits: Limits | None = None) -> RawLibrary:
    """Read the library at ``path`` (an archive, a directory or a JSON document).

    An archive is extracted under ``workdir`` (which must exist and be empty or new). Raises
    :class:`LibraryError` with ``InvalidArchive``, ``UnsafeArchive`` or ``TooLarge``.
    """
    limits = limits or Limits()
    if path.is_symlink() and path.is_dir():
        raise _fail(
            LibraryReason.UNSAFE_ARCHIVE,
            f"{path} is a symbolic link to a directory: pass the directory itself",
        )
    if path.is_dir():
        return _read_directory(path, limits)
    if not path.is_file():
        raise _fail(LibraryReason.SOURCE_NOT_FOUND, f"{path}: no such file or directory")
    size = path.stat().st_size
    if size == 0:
        raise _fail(
            LibraryReason.INVALID_ARCHIVE,
            f"{path} is empty: a library is a .tar.gz, a directory "
            "or a JSON document with a manifest and cases",
        )
    with open(path, "rb") as fh:
        head = fh.read(2)
    if head == _GZIP_MAGIC:
        if size > limits.max_archive_bytes:
            raise _fail(
                LibraryReason.TOO_LARGE,
                f"{path.name} is {_size_text(size)}, above the archive limit "
                f"of {_size_text(limits.max_archive_bytes)}: split the library or move large models "
                "out of it",
            )
        checksum = file_sha256(path)
        root = workdir / "extracted"
        _extract(path, root, limits)
        return _read_tree(root, "archive", checksum, size, limits)
    return _read_document(path, size, limits)


def _read_document(path: Path, size: int, limits: Limits) -> RawLibrary:
    data = _read_bounded(path, limits.max_cases_bytes, path.name, _CASES_HINT)
    checksum = hashlib.sha256(data).hexdigest()
    stripped = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped[:1] not in (b"{", b"["):
        raise _fail(
            LibraryReason.INVALID_ARCHIVE,
            f"{path.name} is neither a .tar.gz archive nor a JSON "
            "document: a library is a .tar.gz (library.json + cases.json), a directory, or one "
            'JSON object with the manifest and "cases"',
        )
    doc = parse_json(data, path.name)
    if isinstance(doc, list):
        raise _fail(
            LibraryReason.INVALID_ARCHIVE,
            f"{path.name} is a bare list of cases (seed 000's files): "
            'a library also needs its manifest. Wrap it as {"schemaVersion": 1, "name": ..., '
            '"version": ..., "description": ..., "licence": ..., "cases": [...]} or build an '
            "archive with `foresight library pack`",
        )
    if not isinstance(doc, dict):
        raise _fail(
            LibraryReason.INVALID_ARCHIVE,
            f'{path.name} holds a JSON {type(doc).__name__}, not an object with the manifest and "cases"',
        )
    cases = doc.get("cases")
    if not isinstance(cases, list):
        raise _fail(
            LibraryReason.INVALID_ARCHIVE,
            f"{path.name}: a single-document library holds its cases "
            'inline as "cases": [...]; an archive names a file there',
        )
    manifest = {k: v for k, v in doc.items() if k != "cases"}
    manifest["cases"] = []  # the schema's "array" branch: the single-document form
    return RawLibrary(form="document", checksum=checksum, size_bytes=size, manifest=manifest, cases=cases)


def _member_path(name: str) -> PurePosixPath:
    """The safe relative path of an archive member, or ``UnsafeArchive``."""
    if "\x00" in name:
        raise _fail(LibraryReason.UNSAFE_ARCHIVE, f"member {name!r} has a NUL byte in its name")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise _fail(
            LibraryReason.UNSAFE_ARCHIVE,
            f"member {name!r} has an absolute path: every path in a library archive is relative to its root",
        )
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise _fail(
            LibraryReason.UNSAFE_ARCHIVE,
            f"member {name!r} escapes the archive root ('..'): rebuild "
            "the archive from the library's directory (`foresight library pack`)",
        )
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _copy_counted(src: IO[bytes], dst: IO[bytes], budget: int) -> int:
    written = 0
    for chunk in iter(lambda: src.read(_CHUNK), b""):
        written += len(chunk)
        if written > budget:
            raise OverflowError
        dst.write(chunk)
    return written


def _extract(archive: Path, root: Path, limits: Limits) -> None:
    """Extract ``archive`` into ``root`` member by member, refusing anything unsafe or too large."""
    root.mkdir(parents=True, exist_ok=False)
    seen: set[PurePosixPath] = set()
    total = 0
    members = 0
    try:
        # Streaming mode ("r|gz"): one pass, no seeking, nothing read twice.
        with tarfile.open(archive, mode="r|gz") as tar:
            for member in tar:
                members += 1
                if members > limits.max_members:
                    raise _fail(
                        LibraryReason.TOO_LARGE,
                        f"{archive.name} has more than {limits.max_members} "
                        "members: a library is a manifest, a cases file and a few models",
                    )
                rel = _member_path(member.name)
                if member.issym() or member.islnk():
                    raise _fail(
                        LibraryReason.UNSAFE_ARCHIVE,
                        f"member {member.name!r} is a "
                        f"{'symbolic' if member.issym() else 'hard'} link (to {member.linkname!r}): a "
                        "library archive holds regular files and directories only",
                    )
                if not (member.isfile() or member.isdir()):
                    raise _fail(
                        LibraryReason.UNSAFE_ARCHIVE,
                        f"member {member.name!r} is a device, FIFO or "
                        "other special file: a library archive holds regular files only",
                    )
                if rel in seen and not member.isdir():
                    raise _fail(
                        LibraryReason.UNSAFE_ARCHIVE,
                        f"member {member.name!r} appears twice: the "
                        "second copy would silently replace the first",
                    )
                seen.add(rel)
                dest = root.joinpath(*rel.parts)
                if member.isdir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                if total + member.size > limits.max_total_bytes:
                    raise _fail(
                        LibraryReason.TOO_LARGE,
                        f"{archive.name} holds more than "
                        f"{_size_text(limits.max_total_bytes)} once uncompressed",
                    )
                dest.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(member)
                if src is None:
                    raise _fail(LibraryReason.INVALID_ARCHIVE, f"member {member.name!r} cannot be read")
                with src, open(dest, "xb") as out:
                    total += _copy_counted(src, out, limits.max_total_bytes - total)
    except LibraryError:
        raise
    except OverflowError as exc:
        raise _fail(
            LibraryReason.TOO_LARGE,
            f"{archive.name} holds more than {_size_text(limits.max_total_bytes)} once uncompressed",
        ) from exc
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise _fail(
            LibraryReason.INVALID_ARCHIVE,
            f"{archive.name} is not a readable .tar.gz "
            f"({type(exc).__name__}: {exc}); rebuild it with `foresight library pack`",
        ) from exc


def _walk(root: Path, limits: Limits) -> Iterator[tuple[str, Path]]:
    count = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        for name in sorted(dirnames + filenames):
            full = here / name
            rel = full.relative_to(root).as_posix()
            if full.is_symlink():
                raise _fail(
                    LibraryReason.UNSAFE_ARCHIVE,
                    f"{rel} is a symbolic link (to {os.readlink(full)!r}): "
                    "a library holds regular files and directories only",
                )
            count += 1
            if count > limits.max_members:
                raise _fail(LibraryReason.TOO_LARGE, f"{root} holds more than {limits.max_members} files")
            if name in filenames:
                if not full.is_file():
                    raise _fail(LibraryReason.UNSAFE_ARCHIVE, f"{rel} is not a regular file")
                yield rel, full
        dirnames.sort()


def _read_directory(root: Path, limits: Limits) -> RawLibrary:
    digest = hashlib.sha256()
    total = 0
    for rel, full in _walk(root, limits):
        total += full.stat().st_size
        if total > limits.max_total_bytes:
            raise _fail(
                LibraryReason.TOO_LARGE, f"{root} holds more than {_size_text(limits.max_total_bytes)}"
            )
        digest.update(f"{rel}\0{file_sha256(full)}\n".encode())
    return _read_tree(root, "directory", digest.hexdigest(), total, limits)


def _read_tree(root: Path, form: Form, checksum: str, size: int, limits: Limits) -> RawLibrary:
    """Manifest and cases of an extracted archive or a directory (one wrapping folder is allowed)."""
    if not (root / MANIFEST_FILE).is_file():
        entries = [p for p in root.iterdir() if not p.name.startswith(".")]
        if len(entries) == 1 and entries[0].is_dir() and (entries[0] / MANIFEST_FILE).is_file():
            root = entries[0]
        else:
            raise _fail(
                LibraryReason.INVALID_ARCHIVE,
                f"no {MANIFEST_FILE} at the root of the {form}: a "
                f"library holds {MANIFEST_FILE} (the manifest) and {CASES_FILE} (the cases)",
            )
    files: dict[str, int] = {}
    for rel, full in _walk(root, limits):
        files[rel] = full.stat().st_size
    manifest_data = _read_bounded(
        root / MANIFEST_FILE, MiB, MANIFEST_FILE, "the manifest is a few lines of JSON"
    )
    manifest = parse_json(manifest_data, MANIFEST_FILE)
    if not isinstance(manifest, dict):
        raise _fail(
            LibraryReason.INVALID_MANIFEST,
            f"{MANIFEST_FILE} holds a JSON {type(manifest).__name__}, not an object",
        )
    cases_rel = manifest.get("cases", CASES_FILE)
    if not isinstance(cases_rel, str):
        raise _fail(
            LibraryReason.INVALID_MANIFEST,
            f'{MANIFEST_FILE}: "cases" names the cases file (default '
            f"{CASES_FILE}) in an archive or a directory; inline cases are for single documents",
        )
    cases_path = root.joinpath(*_member_path(cases_rel).parts)
    if cases_rel not in files:
        raise _fail(
            LibraryReason.INVALID_ARCHIVE,
            f"{MANIFEST_FILE} names the cases file {cases_rel!r}, which the {form} does not hold",
        )
    cases = parse_json(_read_bounded(cases_path, limits.max_cases_bytes, cases_rel, _CASES_HINT), cases_rel)
    if not isinstance(cases, list):
        raise _fail(
            LibraryReason.INVALID_ARCHIVE,
            f"{cases_rel} holds a JSON {type(cases).__name__}; it must be an array of cases",
        )
    manifest.setdefault("cases", CASES_FILE)
    return RawLibrary(
        form=form, checksum=checksum, size_bytes=size, manifest=manifest, cases=cases, root=root, files=files
    )
