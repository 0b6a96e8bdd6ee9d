"""Artifact storage for models and datasets: one interface, a local-directory and an S3 backend.

``open_store(uri)`` picks the backend from the URI: ``file:///abs/dir`` or a plain path (a local
folder, a PVC, the embedded default), ``pvc://claim/path`` under the root where claims are mounted,
or ``s3://bucket/prefix`` (any S3-compatible endpoint; its
address and credentials come in through ``S3Options``, read by the caller from its environment).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from foresight.artifacts.base import (
    MANIFEST_NAME,
    ArtifactInfo,
    ArtifactStore,
    DirectoryInfo,
    sha256_bytes,
    sha256_file,
)
from foresight.artifacts.errors import (
    AccessDeniedError,
    ArtifactError,
    ArtifactNotFoundError,
    BucketNotFoundError,
    ChecksumMismatchError,
    IncompleteDirectoryError,
    InvalidCredentialsError,
    InvalidKeyError,
    StoreUnavailableError,
    UnsupportedURIError,
)
from foresight.artifacts.local import LocalArtifactStore
from foresight.contract import env as pod_env


@dataclass(frozen=True)
class S3Options:
    """How to reach an S3-compatible endpoint.

    endpoint: ``host:port`` without scheme (``minio.storage:9000``); ``s3.amazonaws.com`` by default.
    secure: HTTPS when true. retries / timeout_s bound how long an unreachable store blocks a Job.
    part_size: multipart part size in bytes (at least 5 MiB, an S3 rule).
    """

    endpoint: str = "s3.amazonaws.com"
    region: str = "us-east-1"
    secure: bool = True
    credentials: object | None = None  # an S3Credentials; typed loosely so this module needs no minio
    retries: int = 3
    timeout_s: float = 30.0
    part_size: int = 16 * 1024 * 1024


def s3_credentials_from_environ(environ: Mapping[str, str], prefix: str = "") -> object | None:
    """``S3Credentials`` from ``<prefix>AWS_ACCESS_KEY_ID`` / ``..._SECRET_ACCESS_KEY`` (and the session
    token) in ``environ``, or ``None`` when no access key is set there (anonymous, or not S3).

    ``prefix`` tells apart a second pair in one environment (a library source's, next to the
    store's). Typed loosely like ``S3Options.credentials``, so that a runtime that never touches S3
    does not import minio.
    """
    if not environ.get(prefix + pod_env.AWS_ACCESS_KEY_ID):
        return None
    from foresight.artifacts.s3 import S3Credentials

    return S3Credentials.from_env({name: environ[prefix + name] for name in pod_env.AWS_CREDENTIALS
                                   if environ.get(prefix + name)})  # fmt: skip


def open_store(uri: str, *, s3: S3Options | None = None, pvc_root: Path | None = None) -> ArtifactStore:
    """The store rooted at ``uri`` (a directory or a bucket prefix).

    ``pvc://<claim>/<path>`` is the directory ``<pvc_root>/<claim>/<path>``: where a pod has the claim
    mounted (``FORESIGHT_PVC_ROOT``), or local mode's state directory; without ``pvc_root`` it is refused.
    """
    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    if scheme == "" or (len(scheme) == 1 and uri[1:3] in (":\\", ":/")):
        return LocalArtifactStore(Path(uri))
    if scheme == "pvc" and pvc_root is not None and parsed.netloc:
        return LocalArtifactStore(pvc_root / parsed.netloc / unquote(parsed.path).lstrip("/"))
    if scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise UnsupportedURIError(uri, scheme)
        return LocalArtifactStore(Path(unquote(parsed.path)))
    if scheme == "s3":
        # Imported here so a local-only runtime (the operator image) does not need minio.
        from foresight.artifacts.s3 import S3ArtifactStore, S3Credentials

        if not parsed.netloc:
            raise UnsupportedURIError(uri, scheme)
        options = s3 or S3Options()
        creds = options.credentials
        if creds is not None and not isinstance(creds, S3Credentials):
            raise TypeError("S3Options.credentials must be an S3Credentials (from_env() or from_dir())")
        return S3ArtifactStore.connect(
            options.endpoint,
            parsed.netloc,
            unquote(parsed.path),
            credentials=creds,
            region=options.region,
            secure=options.secure,
            retries=options.retries,
            timeout_s=options.timeout_s,
            part_size=options.part_size,
        )
    raise UnsupportedURIError(uri, scheme)


def open_object(uri: str, *, s3: S3Options | None = None) -> tuple[ArtifactStore, str]:
    """Split an object URI into (store of its parent, key).

    ``s3://b/m/v3/model.onnx`` gives (the store at ``s3://b/m/v3``, ``"model.onnx"``).
    """
    stripped = uri.rstrip("/")
    parent, sep, name = stripped.rpartition("/")
    parsed = urlparse(stripped)
    if not sep or not name or (parsed.scheme in ("s3",) and parent.endswith(":/")):
        raise UnsupportedURIError(uri, parsed.scheme or "path")
    return open_store(parent or "/", s3=s3), name


__all__ = [
    "MANIFEST_NAME",
    "AccessDeniedError",
    "ArtifactError",
    "ArtifactInfo",
    "ArtifactNotFoundError",
    "ArtifactStore",
    "BucketNotFoundError",
    "ChecksumMismatchError",
    "DirectoryInfo",
    "IncompleteDirectoryError",
    "InvalidCredentialsError",
    "InvalidKeyError",
    "LocalArtifactStore",
    "S3Options",
    "StoreUnavailableError",
    "UnsupportedURIError",
    "open_object",
    "open_store",
    "s3_credentials_from_environ",
    "sha256_bytes",
    "sha256_file",
]
