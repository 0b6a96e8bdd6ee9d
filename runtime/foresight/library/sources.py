"""Getting a library's bytes from its source: built-in, HTTP(S) URL, S3 object or mounted ConfigMap.

Each kind ends the same way: a local file, its sha256 computed while it was written, and what the
source looked like (:class:`SourceHealth`, which the operator shows as ``status.source``). A
download stops at :attr:`Limits.max_archive_bytes`; the sha256 is compared with ``spec.sha256``
before anything is parsed, so a tampered or replaced file is never even read as a library.

Failures are :class:`FetchError` (a :class:`LibraryError` that carries the source's health): an
unreachable host, a timeout or a 5xx is ``SourceUnreachable`` and retryable; a 404 / missing key is
``SourceNotFound``; 401 / 403 / rejected S3 credentials are ``AccessDenied``; a wrong checksum is
``ChecksumMismatch``. Messages show a URL without its query string or credentials (a pre-signed URL
carries a secret there).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from foresight.api.modellibrary import ModelLibrarySpec
from foresight.artifacts import (
    AccessDeniedError,
    ArtifactError,
    ArtifactNotFoundError,
    BucketNotFoundError,
    ChecksumMismatchError,
    S3Options,
    StoreUnavailableError,
    open_object,
)
from foresight.contract.s3 import AWS_ENDPOINT

from .archive import Limits, file_sha256
from .builtin import BUILTINS, builtin_path
from .errors import LibraryError, LibraryReason

__all__ = [
    "FetchError",
    "Fetched",
    "SourceHealth",
    "SourceOptions",
    "fetch_source",
    "redact_url",
    "source_kind",
]

_CHUNK = 1024 * 1024
_NEXT_STEP = "nothing was activated; the previously active version (if any) stays active"


@dataclass(frozen=True)
class SourceHealth:
    """What the fetch saw of the source (the API's ``LibrarySourceHealth``)."""

    kind: str
    location: str
    reachable: bool
    http_status: int | None = None
    message: str | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"kind": self.kind, "location": self.location, "reachable": self.reachable}
        if self.http_status is not None:
            doc["httpStatus"] = self.http_status
        if self.message:
            doc["message"] = self.message[:1000]
        return doc


class FetchError(LibraryError):
    """A source that did not give a usable file; ``health`` says what was seen."""

    def __init__(self, reason: LibraryReason, message: str, health: SourceHealth, *, retryable: bool = False):
        super().__init__(reason, message, retryable=retryable)
        self.health = health


@dataclass(frozen=True)
class Fetched:
    path: Path
    sha256: str
    size: int
    health: SourceHealth


@dataclass(frozen=True)
class SourceOptions:
    """What the fetch needs beyond the spec, read from the Job's config and environment by the caller.

    config_map_dir: where the Job mounts ``spec.source.configMap`` (one file per key).
    s3_credentials: an ``S3Credentials`` for an s3 source (``None``: anonymous).
    timeout_s: connect and read timeout of one HTTP(S) or S3 request, in seconds.
    """

    config_map_dir: Path | None = None
    s3_credentials: object | None = None
    timeout_s: float = 30.0


def redact_url(url: str) -> str:
    """``scheme://host[:port]/path``: no user, password, query or fragment (they can hold secrets)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def source_kind(spec: ModelLibrarySpec) -> str:
    src = spec.source
    if src.builtin:
        return "builtin"
    if src.url:
        return "url"
    if src.s3:
        return "s3"
    return "configMap"


def _check_sha(fetched: Fetched, expected: str | None, what: str) -> Fetched:
    if expected is not None and expected.lower() != fetched.sha256:
        raise FetchError(
            LibraryReason.CHECKSUM_MISMATCH,
            f"{what} has sha256 {fetched.sha256} but spec.sha256 is "
            f"{expected.lower()}: the file changed since it was pinned, or the pin is wrong. If the new "
            "file is the one you want, check it with `foresight library verify` and set spec.sha256 (and "
            f"spec.version) to its values; {_NEXT_STEP}",
            fetched.health,
        )
    return fetched


def fetch_source(spec: ModelLibrarySpec, workdir: Path, *, limits: Limits, options: SourceOptions) -> Fetched:
    """The library's file, checked against ``spec.sha256`` (required for url and s3 sources)."""
    kind = source_kind(spec)
    if kind in ("url", "s3") and not spec.sha256:
        health = SourceHealth(kind, _location(spec), reachable=False, message="not fetched: no sha256")
        raise FetchError(
            LibraryReason.INVALID_SPEC,
            f"a {kind} source needs spec.sha256 (a download is trusted "
            "only when its checksum is pinned): set it to the sha256 the publisher gives",
            health,
        )
    if kind == "builtin":
        fetched = _fetch_builtin(str(spec.source.builtin))
    elif kind == "url":
        fetched = _fetch_url(str(spec.source.url), workdir, limits, options)
    elif kind == "s3":
        fetched = _fetch_s3(spec, workdir, limits, options)
    else:
        fetched = _fetch_config_map(spec, limits, options)
    return _check_sha(fetched, spec.sha256, fetched.health.location)


def _location(spec: ModelLibrarySpec) -> str:
    src = spec.source
    if src.builtin:
        return f"builtin:{src.builtin}"
    if src.url:
        return redact_url(src.url)
    if src.s3:
        return src.s3
    cm = src.config_map
    return f"configmap:{cm.name}/{cm.key}" if cm else ""


def _fetch_builtin(name: str) -> Fetched:
    location = f"builtin:{name}"
    entry = BUILTINS.get(name)
    if entry is None:
        health = SourceHealth("builtin", location, reachable=True, message="no such built-in library")
        raise FetchError(
            LibraryReason.UNKNOWN_BUILTIN,
            f"this runtime image ships no built-in library {name!r} "
            f"(it ships: {', '.join(sorted(BUILTINS))}); fix spec.source.builtin, or use an image "
            "that ships it",
            health,
        )
    path = builtin_path(name)
    health = SourceHealth("builtin", location, reachable=True)
    fetched = Fetched(path, file_sha256(path), path.stat().st_size, health)
    if fetched.sha256 != entry.sha256:
        raise FetchError(
            LibraryReason.CHECKSUM_MISMATCH,
            f"the packaged file of built-in library {name} has sha256 "
            f"{fetched.sha256}, but this runtime was built with {entry.sha256}: the image is damaged or "
            f"was altered; pull it again; {_NEXT_STEP}",
            health,
        )
    return fetched


def _fetch_url(url: str, workdir: Path, limits: Limits, options: SourceOptions) -> Fetched:
    location = redact_url(url)
    dest = workdir / "source"
    try:
        response = requests.get(
            url,
            stream=True,
            timeout=(min(10.0, options.timeout_s), options.timeout_s),
            headers={"User-Agent": "foresight-library-fetch"},
        )
    except requests.RequestException as exc:
        health = SourceHealth("url", location, reachable=False, message=f"{type(exc).__name__}")
        raise FetchError(
            LibraryReason.SOURCE_UNREACHABLE,
            f"cannot reach {location} ({type(exc).__name__}): check "
            f"the URL and that the server is up and reachable from the cluster; the fetch is retried; "
            f"{_NEXT_STEP}",
            health,
            retryable=True,
        ) from exc
    with response:
        status = response.status_code
        health = SourceHealth("url", location, reachable=True, http_status=status)
        if status >= 400:
            raise _http_error(location, status, health)
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > limits.max_archive_bytes:
            raise FetchError(
                LibraryReason.TOO_LARGE,
                f"{location} is {int(declared)} bytes, above the limit of "
                f"{limits.max_archive_bytes} bytes for a library; split it; {_NEXT_STEP}",
                health,
            )
        digest = hashlib.sha256()
        size = 0
        try:
            with open(dest, "wb") as out:
                for chunk in response.iter_content(_CHUNK):
                    size += len(chunk)
                    if size > limits.max_archive_bytes:
                        raise FetchError(
                            LibraryReason.TOO_LARGE,
                            f"{location} sends more than "
                            f"{limits.max_archive_bytes} bytes, the limit for a library; split it; "
                            f"{_NEXT_STEP}",
                            health,
                        )
                    digest.update(chunk)
                    out.write(chunk)
        except requests.RequestException as exc:
            broken = SourceHealth(
                "url",
                location,
                reachable=False,
                http_status=status,
                message=f"download broke off: {type(exc).__name__}",
            )
            raise FetchError(
                LibraryReason.SOURCE_UNREACHABLE,
                f"the download of {location} broke off "
                f"({type(exc).__name__}); the fetch is retried; {_NEXT_STEP}",
                broken,
                retryable=True,
            ) from exc
    return Fetched(dest, digest.hexdigest(), size, health)


def _http_error(location: str, status: int, health: SourceHealth) -> FetchError:
    if status in (404, 410):
        return FetchError(
            LibraryReason.SOURCE_NOT_FOUND,
            f"{location} answered HTTP {status}: there is no library "
            f"at this URL; fix spec.source.url; {_NEXT_STEP}",
            health,
        )
    if status in (401, 403):
        return FetchError(
            LibraryReason.ACCESS_DENIED,
            f"{location} answered HTTP {status}: the server refuses "
            f"this download; publish the library where the cluster may read it; {_NEXT_STEP}",
            health,
        )
    retry = status >= 500 or status in (408, 429)
    return FetchError(
        LibraryReason.SOURCE_UNREACHABLE if retry else LibraryReason.FETCH_FAILED,
        f"{location} answered HTTP {status}"
        + ("; the fetch is retried" if retry else "")
        + f"; {_NEXT_STEP}",
        health,
        retryable=retry,
    )


def _fetch_s3(spec: ModelLibrarySpec, workdir: Path, limits: Limits, options: SourceOptions) -> Fetched:
    uri = str(spec.source.s3)
    store_ref = spec.source.store
    s3 = S3Options(
        endpoint=(store_ref.endpoint if store_ref and store_ref.endpoint else AWS_ENDPOINT),
        region=store_ref.region if store_ref else "us-east-1",
        secure=not (store_ref.insecure if store_ref else False),
        credentials=options.s3_credentials,
        retries=1,
        timeout_s=options.timeout_s,
    )
    health = SourceHealth("s3", uri, reachable=True)
    dest = workdir / "source"
    try:
        parent, key = open_object(uri, s3=s3)
        info = parent.stat(key)
        if info.size > limits.max_archive_bytes:
            raise FetchError(
                LibraryReason.TOO_LARGE,
                f"{uri} is {info.size} bytes, above the limit of "
                f"{limits.max_archive_bytes} bytes for a library; split it; {_NEXT_STEP}",
                health,
            )
        # The expected checksum is checked here too, so a mismatching object never lands in ``dest``.
        got = parent.get_file(key, dest, expected_sha256=spec.sha256)
    except FetchError:
        raise
    except ChecksumMismatchError as exc:
        raise FetchError(
            LibraryReason.CHECKSUM_MISMATCH,
            f"{uri}: {exc}; if the new object is the one you want, "
            f"check it with `foresight library verify` and set spec.sha256 to its sha256; {_NEXT_STEP}",
            health,
        ) from exc
    except (ArtifactNotFoundError, BucketNotFoundError) as exc:
        raise FetchError(
            LibraryReason.SOURCE_NOT_FOUND, f"{exc}; fix spec.source.s3; {_NEXT_STEP}", health
        ) from exc
    except AccessDeniedError as exc:
        raise FetchError(LibraryReason.ACCESS_DENIED, f"{exc}; {_NEXT_STEP}", health) from exc
    except StoreUnavailableError as exc:
        down = SourceHealth("s3", uri, reachable=False, message=exc.reason)
        raise FetchError(
            LibraryReason.SOURCE_UNREACHABLE,
            f"{exc}; the fetch is retried; {_NEXT_STEP}",
            down,
            retryable=True,
        ) from exc
    except ArtifactError as exc:
        raise FetchError(LibraryReason.FETCH_FAILED, f"{uri}: {exc}; {_NEXT_STEP}", health) from exc
    return Fetched(dest, got.sha256, got.size, health)


def _fetch_config_map(spec: ModelLibrarySpec, limits: Limits, options: SourceOptions) -> Fetched:
    cm = spec.source.config_map
    assert cm is not None  # source_kind() said configMap
    location = f"configmap:{cm.name}/{cm.key}"
    if options.config_map_dir is None:
        health = SourceHealth("configMap", location, reachable=False, message="not mounted")
        raise FetchError(
            LibraryReason.FETCH_FAILED,
            f"ConfigMap {cm.name} is not mounted into the fetch Job (no "
            "configMapDir in its config): this is a bug in the operator worth reporting",
            health,
        )
    path = options.config_map_dir / cm.key
    if not path.is_file():
        keys = (
            sorted(p for p in os.listdir(options.config_map_dir) if not p.startswith("."))
            if options.config_map_dir.is_dir()
            else []
        )
        health = SourceHealth("configMap", location, reachable=True, message="key not found")
        raise FetchError(
            LibraryReason.SOURCE_NOT_FOUND,
            f"ConfigMap {cm.name} has no key {cm.key!r} (its keys: "
            f"{', '.join(keys) or 'none'}); fix spec.source.configMap.key or the ConfigMap",
            health,
        )
    health = SourceHealth("configMap", location, reachable=True)
    size = path.stat().st_size
    if size > limits.max_archive_bytes:
        raise FetchError(
            LibraryReason.TOO_LARGE,
            f"{location} is {size} bytes, above the limit of {limits.max_archive_bytes}",
            health,
        )
    return Fetched(path, file_sha256(path), size, health)
