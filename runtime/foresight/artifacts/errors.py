"""The artifact store's one error hierarchy.

Every error says what to do next and carries the data a user needs to fix the cause (the URI, the
bucket, the endpoint, the checksums), never a credential. ``retryable`` tells callers (the
operator, Job retry loops) whether trying again later can help.
"""

from __future__ import annotations


class ArtifactError(Exception):
    """Base class of every artifact-store error."""

    #: True when the cause is temporary and the same call may succeed later.
    retryable: bool = False


class UnsupportedURIError(ArtifactError):
    """The URI's scheme has no backend."""

    def __init__(self, uri: str, scheme: str) -> None:
        self.uri = uri
        self.scheme = scheme
        super().__init__(
            f"unsupported artifact URI {uri!r} (scheme {scheme!r}): use file:///abs/dir, a plain "
            "path, or s3://bucket/prefix"
        )


class InvalidKeyError(ArtifactError):
    """An object key is empty, absolute, escapes its root or uses a reserved name."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"invalid artifact key {key!r}: {reason}")


class ArtifactNotFoundError(ArtifactError):
    """No complete object at this URI."""

    def __init__(self, uri: str, hint: str = "") -> None:
        self.uri = uri
        super().__init__(
            f"artifact not found: {uri}; "
            + (hint or "check the artifact URI in the spec, or that the producing job finished")
        )


class IncompleteDirectoryError(ArtifactNotFoundError):
    """A model directory has no MANIFEST.json, so its files cannot be trusted (upload unfinished)."""

    def __init__(self, uri: str) -> None:
        super().__init__(
            uri,
            hint="the directory has no MANIFEST.json (its upload never finished); re-run the job "
            "that produces it",
        )


class BucketNotFoundError(ArtifactError):
    """The bucket does not exist on this endpoint."""

    def __init__(self, bucket: str, endpoint: str) -> None:
        self.bucket = bucket
        self.endpoint = endpoint
        super().__init__(
            f"bucket {bucket!r} does not exist on {endpoint}: create it (mc mb / aws s3 mb) or fix "
            "the bucket in the artifact URI"
        )


class AccessDeniedError(ArtifactError):
    """The credentials are valid but not allowed to do this."""

    def __init__(self, bucket: str, endpoint: str, code: str, secret_keys: tuple[str, ...] = ()) -> None:
        self.bucket = bucket
        self.endpoint = endpoint
        self.code = code
        self.secret_keys = secret_keys
        super().__init__(self._message())

    def _message(self) -> str:
        return (
            f"access denied to bucket {self.bucket!r} on {self.endpoint} ({self.code}): grant the "
            "user read/write on the bucket, or use other credentials" + self._secret_hint()
        )

    def _secret_hint(self) -> str:
        if not self.secret_keys:
            return ""
        return " (check the Secret keys " + ", ".join(self.secret_keys) + ")"


class InvalidCredentialsError(AccessDeniedError):
    """The endpoint does not accept the access key or the secret key."""

    def _message(self) -> str:
        return (
            f"the S3 endpoint {self.endpoint} rejected the credentials ({self.code}) for bucket "
            f"{self.bucket!r}: check the access key id and secret access key" + self._secret_hint()
        )


class StoreUnavailableError(ArtifactError):
    """The store cannot be reached or answered with a server error; try again later."""

    retryable = True

    def __init__(self, endpoint: str, reason: str) -> None:
        self.endpoint = endpoint
        self.reason = reason
        super().__init__(
            f"artifact store {endpoint} is unavailable ({reason}): retry later, or check the "
            "endpoint address and that the server is running"
        )


class ChecksumMismatchError(ArtifactError):
    """The content read does not have the SHA-256 that was expected."""

    def __init__(self, uri: str, expected: str, actual: str) -> None:
        self.uri = uri
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"checksum mismatch for {uri}: expected sha256 {expected}, got {actual}; the artifact "
            "is corrupt or was replaced: re-upload it or fix the expected checksum in the spec"
        )


__all__ = [
    "AccessDeniedError",
    "ArtifactError",
    "ArtifactNotFoundError",
    "BucketNotFoundError",
    "ChecksumMismatchError",
    "IncompleteDirectoryError",
    "InvalidCredentialsError",
    "InvalidKeyError",
    "StoreUnavailableError",
    "UnsupportedURIError",
]
