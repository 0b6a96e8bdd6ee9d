"""S3 error mapping and credential handling that need no server (the server tests are integration)."""

from __future__ import annotations

from pathlib import Path

import pytest
from foresight.artifacts import (
    AccessDeniedError,
    ArtifactError,
    ArtifactNotFoundError,
    BucketNotFoundError,
    InvalidCredentialsError,
    StoreUnavailableError,
)
from foresight.artifacts.s3 import S3ArtifactStore, S3Credentials, make_client
from minio.error import S3Error


def _s3_error(code: str) -> S3Error:
    return S3Error(None, code, "message", "/bucket/key", "req", "host")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("NoSuchBucket", BucketNotFoundError),
        ("NoSuchKey", ArtifactNotFoundError),
        ("AccessDenied", AccessDeniedError),
        ("InvalidAccessKeyId", InvalidCredentialsError),
        ("SignatureDoesNotMatch", InvalidCredentialsError),
        ("SlowDown", StoreUnavailableError),
        ("SomethingNew", ArtifactError),
    ],
)
def test_s3_error_codes_map_into_the_hierarchy(code: str, expected: type[ArtifactError]) -> None:
    store = S3ArtifactStore(make_client("127.0.0.1:1", None, secure=False), "bkt", endpoint="127.0.0.1:1")
    mapped = store._map_s3_error(_s3_error(code), "s3://bkt/k")
    assert type(mapped) is expected


def test_credentials_from_env_and_masked_repr() -> None:
    creds = S3Credentials.from_env({"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "s3cr3t"})
    assert (creds.access_key, creds.secret_key, creds.session_token) == ("AKIAEXAMPLE", "s3cr3t", None)
    for text in (repr(creds), str(creds), f"{creds}"):
        assert "s3cr3t" not in text and "AKIAEXAMPLE" not in text
    with pytest.raises(KeyError) as caught:
        S3Credentials.from_env({"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE"})
    assert "AWS_SECRET_ACCESS_KEY" in str(caught.value)


def test_credentials_from_a_mounted_secret(tmp_path: Path) -> None:
    (tmp_path / "AWS_ACCESS_KEY_ID").write_text("AKIAFILE\n")
    (tmp_path / "AWS_SECRET_ACCESS_KEY").write_text("from-file\n")
    creds = S3Credentials.from_dir(tmp_path)
    assert (creds.access_key, creds.secret_key) == ("AKIAFILE", "from-file")
    assert "from-file" not in repr(creds)
    (tmp_path / "AWS_SECRET_ACCESS_KEY").write_text("")
    with pytest.raises(KeyError) as caught:
        S3Credentials.from_dir(tmp_path)
    assert "AWS_SECRET_ACCESS_KEY" in str(caught.value) and "AKIAFILE" not in str(caught.value)


def test_invalid_credentials_message_names_secret_keys_not_values() -> None:
    err = InvalidCredentialsError(
        "bkt", "minio:9000", "SignatureDoesNotMatch", ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    )
    assert "AWS_SECRET_ACCESS_KEY" in str(err) and "minio:9000" in str(err)
    assert isinstance(err, AccessDeniedError) and not err.retryable
