"""The S3-compatible backend (MinIO, Ceph RGW, AWS S3, ...) through the ``minio`` client.

Each object carries its SHA-256 as user metadata (``x-amz-meta-sha256``), computed before the
upload. A single PUT and a completed multipart upload are atomic on S3, so readers never see a
partial object. Downloads land in a temporary file next to the destination and are renamed into
place only after the checksum matched.

Credentials are passed in (``S3Credentials.from_env()`` / ``.from_dir()`` read them in the entry
point); they never appear in a repr, a log line or an error message. Every client error is mapped
into ``foresight.artifacts.errors`` with ``raise ... from``.
"""

from __future__ import annotations

import contextlib
import io
import os
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import urllib3
from minio import Minio
from minio.error import InvalidResponseError, S3Error, ServerError

from foresight.artifacts.base import (
    ArtifactInfo,
    ArtifactStore,
    copy_hashing,
    join_key,
    normalize_key,
    normalize_prefix,
    sha256_bytes,
    sha256_file,
    verify_sha256,
)
from foresight.artifacts.errors import (
    AccessDeniedError,
    ArtifactError,
    ArtifactNotFoundError,
    BucketNotFoundError,
    InvalidCredentialsError,
    StoreUnavailableError,
)
from foresight.contract import env as pod_env

#: The environment variables (and mounted Secret files) the credentials are read from: the
#: names the operator gives a pod (foresight.contract.s3).
ACCESS_KEY_NAME = pod_env.AWS_ACCESS_KEY_ID
SECRET_KEY_NAME = pod_env.AWS_SECRET_ACCESS_KEY
SESSION_TOKEN_NAME = pod_env.AWS_SESSION_TOKEN
SHA256_META = "sha256"
_SHA256_HEADER = "x-amz-meta-sha256"
#: minio's own minimum; larger parts mean fewer requests for big checkpoints.
DEFAULT_PART_SIZE = 16 * 1024 * 1024

_NOT_FOUND = {"NoSuchKey", "NoSuchObject", "ResourceNotFound", "NotFound"}
_BAD_CREDENTIALS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"}
_DENIED = {"AccessDenied", "AllAccessDisabled", "AccountProblem"}
_TEMPORARY = {"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "ServerBusy"}


@dataclass(frozen=True)
class S3Credentials:
    """An access key pair (and optional session token); ``repr`` never shows the values."""

    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    #: Where they came from (``env`` or the mounted Secret's directory), for error messages.
    source: str = "explicit"

    def __repr__(self) -> str:
        token = ", session_token='***'" if self.session_token else ""
        return f"S3Credentials(access_key='***', secret_key='***'{token}, source={self.source!r})"

    __str__ = __repr__

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> S3Credentials:
        """Read ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (+ ``AWS_SESSION_TOKEN``)."""
        env = os.environ if environ is None else environ
        missing = [name for name in (ACCESS_KEY_NAME, SECRET_KEY_NAME) if not env.get(name)]
        if missing:
            raise KeyError(
                f"S3 credentials: environment variable(s) {', '.join(missing)} not set; set them or "
                "mount the credentials Secret and use S3Credentials.from_dir()"
            )
        return cls(env[ACCESS_KEY_NAME], env[SECRET_KEY_NAME], env.get(SESSION_TOKEN_NAME) or None, "env")

    @classmethod
    def from_dir(cls, path: str | os.PathLike[str]) -> S3Credentials:
        """Read a Kubernetes Secret mounted as files ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``."""
        root = Path(path)

        def read(name: str) -> str | None:
            file = root / name
            return file.read_text(encoding="utf-8").strip() if file.is_file() else None

        access, secret = read(ACCESS_KEY_NAME), read(SECRET_KEY_NAME)
        if not access or not secret:
            missing = [n for n, v in ((ACCESS_KEY_NAME, access), (SECRET_KEY_NAME, secret)) if not v]
            raise KeyError(
                f"S3 credentials: {root} has no (or an empty) {', '.join(missing)}; add the key(s) to "
                "the Secret mounted there"
            )
        return cls(access, secret, read(SESSION_TOKEN_NAME) or None, str(root))


def make_client(
    endpoint: str,
    credentials: S3Credentials | None,
    *,
    region: str = "us-east-1",
    secure: bool = True,
    retries: int = 3,
    timeout_s: float = 30.0,
) -> Minio:
    """A MinIO client with bounded retries and timeouts (minio's default retries for ~6 s)."""
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=min(timeout_s, 10.0), read=timeout_s),
        retries=urllib3.Retry(
            total=retries, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504], raise_on_status=False
        ),
    )
    return Minio(
        endpoint,
        access_key=credentials.access_key if credentials else None,
        secret_key=credentials.secret_key if credentials else None,
        session_token=credentials.session_token if credentials else None,
        secure=secure,
        # Passing the region saves a GetBucketLocation call and makes moto/MinIO sign consistently.
        region=region,
        http_client=http,
    )


class S3ArtifactStore(ArtifactStore):
    """Artifacts under ``s3://bucket/prefix`` on one endpoint."""

    def __init__(
        self,
        client: Minio,
        bucket: str,
        prefix: str = "",
        *,
        endpoint: str = "",
        part_size: int = DEFAULT_PART_SIZE,
        secret_keys: tuple[str, ...] = (ACCESS_KEY_NAME, SECRET_KEY_NAME),
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = normalize_prefix(prefix)
        self.endpoint = endpoint or "s3"
        self.part_size = part_size
        self.secret_keys = secret_keys
        self.base_uri = f"s3://{bucket}" + (f"/{self.prefix}" if self.prefix else "")

    @classmethod
    def connect(
        cls,
        endpoint: str,
        bucket: str,
        prefix: str = "",
        *,
        credentials: S3Credentials | None = None,
        region: str = "us-east-1",
        secure: bool = True,
        retries: int = 3,
        timeout_s: float = 30.0,
        part_size: int = DEFAULT_PART_SIZE,
    ) -> S3ArtifactStore:
        client = make_client(
            endpoint, credentials, region=region, secure=secure, retries=retries, timeout_s=timeout_s
        )
        return cls(client, bucket, prefix, endpoint=endpoint, part_size=part_size)

    def __repr__(self) -> str:
        return f"S3ArtifactStore(endpoint={self.endpoint!r}, uri={self.base_uri!r})"

    def _name(self, key: str) -> str:
        return join_key(self.prefix, normalize_key(key))

    def _key_of(self, name: str) -> str:
        return name[len(self.prefix) + 1 :] if self.prefix else name

    @contextlib.contextmanager
    def _errors(self, key: str | None = None) -> Iterator[None]:
        """Map minio / urllib3 errors into the artifact error hierarchy."""
        uri = self.uri_for(key) if key else self.base_uri
        try:
            yield
        except ArtifactError:
            raise
        except S3Error as exc:
            raise self._map_s3_error(exc, uri) from exc
        except ServerError as exc:
            raise StoreUnavailableError(self.endpoint, f"HTTP {exc.status_code}") from exc
        except InvalidResponseError as exc:
            raise StoreUnavailableError(self.endpoint, "the server sent a response that is not S3") from exc
        except (urllib3.exceptions.HTTPError, ConnectionError) as exc:
            raise StoreUnavailableError(self.endpoint, type(exc).__name__ + ": " + _reason(exc)) from exc

    def _map_s3_error(self, exc: S3Error, uri: str) -> ArtifactError:
        code = exc.code or ""
        if code == "NoSuchBucket":
            return BucketNotFoundError(self.bucket, self.endpoint)
        if code in _NOT_FOUND:
            return ArtifactNotFoundError(uri)
        if code in _BAD_CREDENTIALS:
            return InvalidCredentialsError(self.bucket, self.endpoint, code, self.secret_keys)
        if code in _DENIED:
            return AccessDeniedError(self.bucket, self.endpoint, code, self.secret_keys)
        if code in _TEMPORARY:
            return StoreUnavailableError(self.endpoint, code)
        return ArtifactError(f"S3 error {code} on {uri}: {exc.message}")

    def _not_found(self, key: str) -> ArtifactError:
        # A HEAD has no body, so minio reports a missing bucket as NoSuchKey: ask once to tell apart.
        with self._errors(key):
            if not self.client.bucket_exists(self.bucket):
                return BucketNotFoundError(self.bucket, self.endpoint)
        return ArtifactNotFoundError(self.uri_for(key))

    # -- writes --------------------------------------------------------------------------------

    def put_file(self, local_path: str | os.PathLike[str], key: str) -> ArtifactInfo:
        digest = sha256_file(local_path)
        size = os.path.getsize(local_path)
        with self._errors(key):
            self.client.fput_object(
                self.bucket,
                self._name(key),
                os.fspath(local_path),
                metadata={SHA256_META: digest},
                part_size=self.part_size,
            )
        return ArtifactInfo(uri=self.uri_for(key), key=normalize_key(key), sha256=digest, size=size)

    def put_bytes(self, data: bytes, key: str) -> ArtifactInfo:
        digest = sha256_bytes(data)
        with self._errors(key):
            self.client.put_object(
                self.bucket,
                self._name(key),
                io.BytesIO(data),
                len(data),
                metadata={SHA256_META: digest},
                part_size=self.part_size,
            )
        return ArtifactInfo(uri=self.uri_for(key), key=normalize_key(key), sha256=digest, size=len(data))

    def delete(self, key: str) -> None:
        with self._errors(key):
            self.client.remove_object(self.bucket, self._name(key))

    # -- reads ---------------------------------------------------------------------------------

    def stat(self, key: str) -> ArtifactInfo:
        """Info from a HEAD; ``sha256`` is ``""`` for an object written by a tool that recorded none."""
        try:
            with self._errors(key):
                obj = self.client.stat_object(self.bucket, self._name(key))
        except ArtifactNotFoundError:
            raise self._not_found(key) from None
        return ArtifactInfo(
            uri=self.uri_for(key),
            key=normalize_key(key),
            sha256=_header(obj.metadata, _SHA256_HEADER).lower(),
            size=int(obj.size or 0),
        )

    @contextlib.contextmanager
    def _open(self, key: str) -> Iterator[tuple[IO[bytes], str]]:
        try:
            with self._errors(key):
                response = self.client.get_object(self.bucket, self._name(key))
        except ArtifactNotFoundError:
            raise self._not_found(key) from None
        try:
            recorded = _header(response.headers, _SHA256_HEADER).lower()
            with self._errors(key):
                yield response, recorded  # type: ignore[misc]
        finally:
            response.close()
            response.release_conn()

    def get_bytes(self, key: str, expected_sha256: str | None = None) -> bytes:
        buffer = io.BytesIO()
        with self._open(key) as (stream, recorded):
            actual, _ = copy_hashing(stream, buffer)
        verify_sha256(self.uri_for(key), actual, recorded or None, expected_sha256)
        return buffer.getvalue()

    def get_file(
        self, key: str, local_path: str | os.PathLike[str], expected_sha256: str | None = None
    ) -> ArtifactInfo:
        dest = Path(local_path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".fs-tmp-{uuid.uuid4().hex}-{dest.name}")
        try:
            with self._open(key) as (stream, recorded), open(tmp, "wb") as out:
                actual, size = copy_hashing(stream, out)
            verify_sha256(self.uri_for(key), actual, recorded or None, expected_sha256)
            os.replace(tmp, dest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return ArtifactInfo(uri=self.uri_for(key), key=normalize_key(key), sha256=actual, size=size)

    def list(self, prefix: str = "") -> list[ArtifactInfo]:
        """Objects under ``prefix``; one HEAD each, because listings carry no user metadata."""
        full = (
            join_key(self.prefix, prefix.lstrip("/"))
            if prefix
            else (self.prefix + "/" if self.prefix else "")
        )
        found: list[ArtifactInfo] = []
        with self._errors():
            names = [
                o.object_name for o in self.client.list_objects(self.bucket, prefix=full, recursive=True)
            ]
        for name in names:
            if name is None or name.endswith("/"):
                continue
            with contextlib.suppress(ArtifactNotFoundError):  # deleted since the listing
                found.append(self.stat(self._key_of(name)))
        return sorted(found, key=lambda info: info.key)


def _header(headers: Any, name: str) -> str:
    if headers is None:
        return ""
    for k, v in headers.items():
        if k.lower() == name:
            return str(v)
    return ""


def _reason(exc: BaseException) -> str:
    inner = getattr(exc, "reason", None)
    return str(inner or exc)[:300]
