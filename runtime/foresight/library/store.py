"""Verified libraries in the artifact store, and the one pointer object that names the active version.

Layout under a prefix (default ``modellibraries``; the operator gives each namespace its own)::

    <prefix>/<library>/versions/<version>/library.json        the manifest
                                          cases.json          the verified cases
                                          verification.json   source checksum, counts, quality
                                          MANIFEST.json       the artifact store's, written last
    <prefix>/<library>/versions/<version>/models/<model>/...  each model a directory of its own
    <prefix>/<library>/active.json                            THE pointer

A version is written once, models first and its ``MANIFEST.json`` last (the artifact store's
directory rule), so a version whose manifest exists is complete. A stored version never changes:
storing the same version with other content is refused (``VersionConflict``). "The same content" is
the manifest and the cases as stored, not the file they were fetched as: the built-in JSON document
and the ``.tar.gz`` that ``foresight library pack`` makes of it are one version.

Activation is one ``put_bytes`` of ``active.json``: every backend makes a put atomic (ordered renames locally,
an S3 PUT), so a reader sees the old pointer or the new one, never a mix. The pointer names the
version *and* the sha256 of its ``MANIFEST.json``, and :meth:`LibraryStore.load` reads the manifest
with that checksum and every file with the checksum the manifest lists: whatever a reader loads is
exactly the version that was activated. The replaced version is kept in the pointer as
``previous`` (rollback = activating it again) and stays stored. Withdrawing (``active: false``)
writes a pointer with no active version, keeping the withdrawn one as ``previous``; only the
ModelLibrary that activated the version (its ``owner``) withdraws it, so an inactive ModelLibrary of
the same library never takes another one's active version away.

Two Jobs activating the same library at once both write complete pointers and the last one wins;
the operator runs one fetch Job per ModelLibrary at a time and refuses a second ModelLibrary that
claims the same library name (``ActiveConflict``), using ``owner`` in the pointer to tell them apart.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from foresight.artifacts import (
    MANIFEST_NAME,
    ArtifactError,
    ArtifactNotFoundError,
    ArtifactStore,
    ChecksumMismatchError,
    IncompleteDirectoryError,
    StoreUnavailableError,
    sha256_bytes,
)
from foresight.contract.library import STORE_PREFIX

from .archive import parse_json
from .errors import LibraryError, LibraryReason
from .records import CASES_FILE, MANIFEST_FILE, Case, Library, Manifest

__all__ = [
    "DEFAULT_PREFIX",
    "POINTER_FILE",
    "VERIFICATION_FILE",
    "LibraryStore",
    "Pointer",
    "StoredModel",
    "VersionRef",
]

DEFAULT_PREFIX = STORE_PREFIX
POINTER_FILE = "active.json"
VERIFICATION_FILE = "verification.json"
POINTER_FORMAT = 1


def _now() -> datetime:
    return datetime.now(tz=UTC)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class StoredModel:
    """A model of a stored version: a directory artifact a ModelVersion can name."""

    name: str
    type: str
    uri: str
    manifest_sha256: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "type": self.type, "uri": self.uri, "sha256": self.manifest_sha256}


@dataclass(frozen=True)
class VersionRef:
    """One stored version, as the pointer names it."""

    version: str
    uri: str
    manifest_sha256: str
    """sha256 of the version's MANIFEST.json: what a reader checks before trusting the version."""
    checksum: str
    """sha256 of the library as fetched (the archive or document)."""
    cases: int
    models: int
    activated_at: str | None = None
    owner: str | None = None
    """``namespace/name`` of the ModelLibrary that activated it."""

    def to_json(self) -> dict[str, Any]:
        doc = {
            "version": self.version,
            "uri": self.uri,
            "manifestSha256": self.manifest_sha256,
            "checksum": self.checksum,
            "cases": self.cases,
            "models": self.models,
            "activatedAt": self.activated_at,
            "owner": self.owner,
        }
        return {k: v for k, v in doc.items() if v is not None}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> VersionRef:
        return cls(
            version=str(doc["version"]),
            uri=str(doc["uri"]),
            manifest_sha256=str(doc["manifestSha256"]),
            checksum=str(doc.get("checksum") or ""),
            cases=int(doc.get("cases") or 0),
            models=int(doc.get("models") or 0),
            activated_at=doc.get("activatedAt"),
            owner=doc.get("owner"),
        )


@dataclass(frozen=True)
class Pointer:
    """``active.json``: the active version of one library, and the one it replaced."""

    library: str
    active: VersionRef | None
    previous: VersionRef | None
    updated_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "format": POINTER_FORMAT,
            "library": self.library,
            "active": self.active.to_json() if self.active else None,
            "previous": self.previous.to_json() if self.previous else None,
            "updatedAt": self.updated_at,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Pointer:
        if doc.get("format") != POINTER_FORMAT:
            raise ValueError(
                f"pointer format {doc.get('format')!r}; this runtime reads format {POINTER_FORMAT}"
            )
        return cls(
            library=str(doc["library"]),
            active=VersionRef.from_json(doc["active"]) if doc.get("active") else None,
            previous=VersionRef.from_json(doc["previous"]) if doc.get("previous") else None,
            updated_at=str(doc.get("updatedAt") or ""),
        )


def _store_error(exc: ArtifactError, what: str) -> LibraryError:
    if isinstance(exc, StoreUnavailableError):
        return LibraryError(LibraryReason.STORE_UNAVAILABLE, f"{what}: {exc}", retryable=True)
    if isinstance(exc, ChecksumMismatchError):
        return LibraryError(LibraryReason.CHECKSUM_MISMATCH, f"{what}: {exc}")
    reason = (
        LibraryReason.ACCESS_DENIED
        if "denied" in str(exc).lower() or "rejected" in str(exc).lower()
        else LibraryReason.FETCH_FAILED
    )
    return LibraryError(reason, f"{what}: {exc}", retryable=exc.retryable)


class LibraryStore:
    """Stored library versions and their active pointers in one artifact store, under ``prefix``."""

    def __init__(
        self, store: ArtifactStore, prefix: str = DEFAULT_PREFIX, *, clock: Callable[[], datetime] = _now
    ) -> None:
        self.store = store
        self.prefix = prefix.strip("/")
        self.clock = clock

    # -- keys ------------------------------------------------------------------------------------

    def _key(self, *parts: str) -> str:
        return "/".join(p.strip("/") for p in (self.prefix, *parts) if p.strip("/"))

    def version_key(self, name: str, version: str) -> str:
        return self._key(name, "versions", version)

    def pointer_key(self, name: str) -> str:
        return self._key(name, POINTER_FILE)

    def pointer_uri(self, name: str) -> str:
        return self.store.uri_for(self.pointer_key(name))

    # -- listing ---------------------------------------------------------------------------------

    def names(self) -> list[str]:
        """Libraries with at least one complete version or a pointer."""
        found: set[str] = set()
        for info in self.store.list(self._key() + "/" if self.prefix else ""):
            rest = info.key[len(self.prefix) + 1 :] if self.prefix else info.key
            parts = rest.split("/")
            if (len(parts) == 2 and parts[1] == POINTER_FILE) or (
                len(parts) == 4 and parts[1] == "versions" and parts[3] == MANIFEST_NAME
            ):
                found.add(parts[0])
        return sorted(found)

    def versions(self, name: str) -> list[str]:
        """Complete stored versions of ``name`` (those whose MANIFEST.json exists)."""
        base = self._key(name, "versions") + "/"
        out = set()
        for info in self.store.list(base):
            parts = info.key[len(base) :].split("/")
            if len(parts) == 2 and parts[1] == MANIFEST_NAME:
                out.add(parts[0])
        return sorted(out)

    # -- versions --------------------------------------------------------------------------------

    def stored(self, name: str, version: str) -> VersionRef | None:
        """The stored, complete version, or ``None``."""
        key = self.version_key(name, version)
        try:
            manifest_raw = self.store.get_bytes(f"{key}/{MANIFEST_NAME}")
            entries = {e["path"]: e["sha256"] for e in json.loads(manifest_raw)["files"]}
            verification = json.loads(
                self.store.get_bytes(f"{key}/{VERIFICATION_FILE}", entries.get(VERIFICATION_FILE))
            )
        except ArtifactNotFoundError:
            return None
        except ArtifactError as exc:
            raise _store_error(exc, f"reading stored version {name} {version}") from exc
        return VersionRef(
            version=version,
            uri=self.store.uri_for(key),
            manifest_sha256=sha256_bytes(manifest_raw),
            checksum=str(verification.get("checksum") or ""),
            cases=int(verification.get("cases") or 0),
            models=int(verification.get("models") or 0),
        )

    def put_version(
        self,
        library: Library,
        raw_cases: Sequence[Any],
        *,
        models_root: Path | None,
        verification: Mapping[str, Any],
    ) -> tuple[VersionRef, list[StoredModel], bool]:
        """Store a verified library; returns (its ref, its models, whether it was written now).

        Storing a version that is already stored with the same checksum writes nothing; with another
        checksum it is ``VersionConflict``: a published version must never change under its readers.
        """
        name, version = library.name, library.version
        # In the store each model is the directory models/<name> of its version.
        moved = tuple(replace(m, path=f"models/{m.name}") for m in library.manifest.models)
        manifest = replace(library.manifest, cases_path=CASES_FILE, models=moved)
        files = {
            MANIFEST_FILE: json.dumps(manifest.to_json(), indent=2, ensure_ascii=False).encode(),
            CASES_FILE: json.dumps(list(raw_cases), ensure_ascii=False, separators=(",", ":")).encode(),
        }
        existing = self.stored(name, version)
        models = [self._model_ref(name, version, m.name, m.type) for m in library.manifest.models]
        if existing is not None:
            if existing.checksum != library.checksum and not self._same_content(name, version, files):
                raise LibraryError(
                    LibraryReason.VERSION_CONFLICT,
                    f"version {version} of library {name} is already "
                    f"stored with checksum {existing.checksum}, and this one has {library.checksum}: "
                    "a changed library needs a new version (set a new version in its manifest and "
                    "in spec.version)",
                )
            return existing, [m for m in models if m is not None], False
        key = self.version_key(name, version)
        stored_models: list[StoredModel] = []
        with tempfile.TemporaryDirectory(prefix="foresight-library-") as tmp:
            staging = Path(tmp) / "version"
            staging.mkdir()
            for file_name, data in files.items():
                (staging / file_name).write_bytes(data)
            (staging / VERIFICATION_FILE).write_text(json.dumps(dict(verification), indent=2, sort_keys=True))
            try:
                for model in library.manifest.models:
                    assert models_root is not None  # verify_raw refuses models without files
                    folder = Path(tmp) / "models" / model.name
                    for f in model.files:
                        dest = folder / f.path
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(models_root / model.path / f.path, dest)
                    info = self.store.put_dir(folder, f"{key}/models/{model.name}")
                    stored_models.append(StoredModel(model.name, model.type, info.uri, info.manifest.sha256))
                info = self.store.put_dir(staging, key)
            except ArtifactError as exc:
                raise _store_error(exc, f"storing library {name} {version}") from exc
        ref = VersionRef(
            version=version,
            uri=info.uri,
            manifest_sha256=info.manifest.sha256,
            checksum=library.checksum,
            cases=len(library.cases),
            models=len(library.manifest.models),
        )
        return ref, stored_models, True

    def _same_content(self, name: str, version: str, files: Mapping[str, bytes]) -> bool:
        """Whether the stored version holds exactly ``files`` (manifest and cases as stored).

        Models are part of the manifest (each with its files' sha256), so equal manifests carry
        equal models.
        """
        try:
            raw = self.store.get_bytes(f"{self.version_key(name, version)}/{MANIFEST_NAME}")
            entries = {e["path"]: e["sha256"] for e in json.loads(raw)["files"]}
        except (ArtifactError, ValueError, KeyError, TypeError):
            return False
        return all(entries.get(path) == sha256_bytes(data) for path, data in files.items())

    def _model_ref(self, name: str, version: str, model: str, type_: str) -> StoredModel | None:
        key = f"{self.version_key(name, version)}/models/{model}"
        try:
            info = self.store.stat(f"{key}/{MANIFEST_NAME}")
        except ArtifactNotFoundError:
            return None
        except ArtifactError as exc:
            raise _store_error(exc, f"reading model {model} of {name} {version}") from exc
        return StoredModel(model, type_, self.store.uri_for(key), info.sha256)

    # -- the pointer ---------------------------------------------------------------------------------

    def _pointer_bytes(self, name: str) -> bytes | None:
        """The pointer object, or ``None`` when there is none.

        Every backend replaces an object atomically for readers (an S3 PUT; the local-directory
        store's ordered renames, see foresight.artifacts.local), so what comes back is one complete
        pointer, checked against its checksum; a mismatch is damage and is reported at once.
        """
        try:
            return self.store.get_bytes(self.pointer_key(name))
        except ArtifactNotFoundError:
            return None
        except ArtifactError as exc:
            raise _store_error(exc, f"reading the active pointer of {name}") from exc

    def read_pointer(self, name: str) -> Pointer | None:
        raw = self._pointer_bytes(name)
        if raw is None:
            return None
        try:
            return Pointer.from_json(json.loads(raw))
        except (ValueError, KeyError, TypeError) as exc:
            raise LibraryError(
                LibraryReason.FETCH_FAILED,
                f"{self.pointer_uri(name)} is not a library pointer "
                f"({exc}); use a runtime that reads it, or delete it to start over",
            ) from exc

    def _write_pointer(self, pointer: Pointer) -> None:
        data = json.dumps(pointer.to_json(), indent=2, sort_keys=True).encode()
        try:
            self.store.put_bytes(data, self.pointer_key(pointer.library))  # the one atomic step
        except ArtifactError as exc:
            raise _store_error(exc, f"writing the active pointer of {pointer.library}") from exc

    def activate(self, name: str, ref: VersionRef, *, owner: str | None = None) -> Pointer:
        """Make ``ref`` the active version of ``name`` in one write; the replaced one becomes ``previous``."""
        current = self.read_pointer(name)
        now = _iso(self.clock())
        active = replace(ref, activated_at=now, owner=owner)
        if (
            current is not None
            and current.active is not None
            and current.active.version == ref.version
            and current.active.manifest_sha256 == ref.manifest_sha256
        ):
            if current.active.owner == owner:
                return current  # already active: nothing to change
            pointer = replace(current, active=replace(current.active, owner=owner), updated_at=now)
        else:
            previous = (
                current.active
                if current is not None and current.active is not None
                else (current.previous if current is not None else None)
            )
            pointer = Pointer(library=name, active=active, previous=previous, updated_at=now)
        self._write_pointer(pointer)
        return pointer

    def withdraw(self, name: str, version: str, *, owner: str | None = None) -> Pointer | None:
        """No active version any more, if this one is: the pointer as it is now.

        With ``owner`` (the ModelLibrary withdrawing), the active version is withdrawn when that
        ModelLibrary activated it, whichever version it is (a spec that changes its version and
        turns inactive at once still withdraws the old one); without, when it is ``version``.
        A version another ModelLibrary activated is never withdrawn here.
        """
        current = self.read_pointer(name)
        if current is None or current.active is None:
            return current
        held = current.active
        by_owner = owner is not None and held.owner is not None
        if not (held.owner == owner if by_owner else held.version == version):
            return current
        pointer = Pointer(library=name, active=None, previous=held, updated_at=_iso(self.clock()))
        self._write_pointer(pointer)
        return pointer

    # -- reading -------------------------------------------------------------------------------

    def load(self, name: str, version: str | None = None) -> tuple[Library, VersionRef]:
        """The active version of ``name`` (or the stored ``version``), checked byte for byte."""
        if version is None:
            pointer = self.read_pointer(name)
            if pointer is None or pointer.active is None:
                raise LibraryError(
                    LibraryReason.INACTIVE,
                    f"library {name} has no active version in "
                    f"{self.store.uri_for(self._key(name))}: activate one (a ModelLibrary with "
                    "active: true) or name a version",
                )
            ref = pointer.active
        else:
            stored = self.stored(name, version)
            if stored is None:
                have = ", ".join(self.versions(name)) or "none"
                raise LibraryError(
                    LibraryReason.SOURCE_NOT_FOUND,
                    f"version {version} of library {name} is not stored (stored: {have})",
                )
            ref = stored
        key = self.version_key(name, ref.version)
        try:
            entries = {
                e["path"]: e["sha256"]
                for e in json.loads(self.store.get_bytes(f"{key}/{MANIFEST_NAME}", ref.manifest_sha256))[
                    "files"
                ]
            }
            manifest_doc = parse_json(
                self.store.get_bytes(f"{key}/{MANIFEST_FILE}", entries[MANIFEST_FILE]), MANIFEST_FILE
            )
            cases_doc = parse_json(
                self.store.get_bytes(f"{key}/{CASES_FILE}", entries[CASES_FILE]), CASES_FILE
            )
        except IncompleteDirectoryError as exc:
            raise LibraryError(
                LibraryReason.SOURCE_NOT_FOUND,
                f"stored version {ref.version} of {name} is incomplete; fetch it again",
            ) from exc
        except ArtifactError as exc:
            raise _store_error(exc, f"loading library {name} {ref.version}") from exc
        except KeyError as exc:
            raise LibraryError(
                LibraryReason.INVALID_ARCHIVE,
                f"stored version {ref.version} of {name} lacks {exc}; fetch it again",
            ) from exc
        library = Library(
            manifest=Manifest.from_json(manifest_doc),
            cases=tuple(Case.from_json(c) for c in cases_doc),
            checksum=ref.checksum,
        )
        return library, ref
