"""The S3 artifact store against a real S3 server (moto over HTTP on 127.0.0.1)."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest
from foresight.artifacts import (
    AccessDeniedError,
    ArtifactNotFoundError,
    BucketNotFoundError,
    ChecksumMismatchError,
    IncompleteDirectoryError,
    InvalidCredentialsError,
    S3Options,
    StoreUnavailableError,
    open_object,
    open_store,
)
from foresight.artifacts.s3 import S3ArtifactStore, S3Credentials
from minio import Minio

from tests.servers.s3 import REGION, AuthMotoS3Server, MotoS3Server, free_port, unique_bucket

pytestmark = pytest.mark.integration


def test_bytes_round_trip_records_sha256_as_object_metadata(
    store: S3ArtifactStore, raw_client: Minio
) -> None:
    data = b"weights" * 1000
    info = store.put_bytes(data, "lstm/v1/model.pt")

    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.size == len(data)
    assert info.uri == f"s3://{store.bucket}/models/lstm/v1/model.pt"
    head = raw_client.stat_object(store.bucket, "models/lstm/v1/model.pt")
    assert head.metadata["x-amz-meta-sha256"] == info.sha256
    assert store.get_bytes("lstm/v1/model.pt", expected_sha256=info.sha256) == data
    assert store.stat("lstm/v1/model.pt") == info
    assert store.exists("lstm/v1/model.pt")


def test_file_round_trip(store: S3ArtifactStore, tmp_path: Path) -> None:
    src = tmp_path / "model.onnx"
    src.write_bytes(os.urandom(100_000))
    info = store.put_file(src, "gru/model.onnx")

    dest = tmp_path / "out" / "model.onnx"
    got = store.get_file("gru/model.onnx", dest, expected_sha256=info.sha256)

    assert dest.read_bytes() == src.read_bytes()
    assert got.sha256 == info.sha256 == hashlib.sha256(src.read_bytes()).hexdigest()
    assert [p.name for p in dest.parent.iterdir()] == ["model.onnx"]  # no temp file left behind


def test_large_object_goes_up_in_parts_and_comes_back_intact(
    store: S3ArtifactStore, raw_client: Minio, tmp_path: Path
) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(11 * 1024 * 1024))  # three 5 MiB parts
    info = store.put_file(src, "big/checkpoint.bin")

    etag = raw_client.stat_object(store.bucket, "models/big/checkpoint.bin").etag
    assert etag is not None and etag.endswith("-3"), "a multipart upload's ETag ends in -<parts>"
    dest = tmp_path / "big.out"
    store.get_file("big/checkpoint.bin", dest, expected_sha256=info.sha256)
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == info.sha256


def test_content_that_does_not_match_its_recorded_checksum_is_refused(
    store: S3ArtifactStore, raw_client: Minio, tmp_path: Path
) -> None:
    info = store.put_bytes(b"good model", "m/model.pt")
    # Replace the content behind the store's back, keeping the old checksum: a corrupted object.
    raw_client.put_object(
        store.bucket, "models/m/model.pt", io.BytesIO(b"evil model"), 10, metadata={"sha256": info.sha256}
    )

    with pytest.raises(ChecksumMismatchError) as caught:
        store.get_bytes("m/model.pt")
    assert caught.value.expected == info.sha256
    assert caught.value.actual == hashlib.sha256(b"evil model").hexdigest()

    dest = tmp_path / "model.pt"
    dest.write_bytes(b"previous")
    with pytest.raises(ChecksumMismatchError):
        store.get_file("m/model.pt", dest)
    assert dest.read_bytes() == b"previous", "a failed download must not replace the destination"


def test_expected_checksum_from_the_caller_is_enforced(store: S3ArtifactStore) -> None:
    store.put_bytes(b"abc", "x.bin")
    with pytest.raises(ChecksumMismatchError) as caught:
        store.get_bytes("x.bin", expected_sha256="0" * 64)
    assert caught.value.expected == "0" * 64


def test_listing_is_by_prefix_and_carries_checksums(store: S3ArtifactStore) -> None:
    store.put_bytes(b"1", "a/v1/model.pt")
    store.put_bytes(b"22", "a/v2/model.pt")
    store.put_bytes(b"333", "b/v1/model.pt")

    listed = store.list("a/")
    assert [i.key for i in listed] == ["a/v1/model.pt", "a/v2/model.pt"]
    assert [i.size for i in listed] == [1, 2]
    assert listed[1].sha256 == hashlib.sha256(b"22").hexdigest()
    assert [i.key for i in store.list()] == ["a/v1/model.pt", "a/v2/model.pt", "b/v1/model.pt"]

    store.delete("a/v1/model.pt")
    assert [i.key for i in store.list("a/")] == ["a/v2/model.pt"]
    store.delete("a/v1/model.pt")  # deleting a missing key is not an error


def test_model_directory_round_trip_and_manifest_written_last(store: S3ArtifactStore, tmp_path: Path) -> None:
    src = tmp_path / "model"
    (src / "sub").mkdir(parents=True)
    (src / "model.onnx").write_bytes(b"onnx")
    (src / "sub" / "config.json").write_text("{}")
    put = store.put_dir(src, "lstm/v7")
    assert sorted(f.key for f in put.files) == ["lstm/v7/model.onnx", "lstm/v7/sub/config.json"]
    assert store.has_dir("lstm/v7")

    got = store.get_dir("lstm/v7", tmp_path / "copy")
    assert (tmp_path / "copy" / "sub" / "config.json").read_text() == "{}"
    assert {f.sha256 for f in got.files} == {f.sha256 for f in put.files}

    store.put_bytes(b"orphan", "half/model.onnx")  # files without a manifest: an unfinished upload
    with pytest.raises(IncompleteDirectoryError):
        store.get_dir("half", tmp_path / "half")
    assert not (tmp_path / "half").exists()


def test_missing_key_is_not_found(store: S3ArtifactStore, tmp_path: Path) -> None:
    for call in (
        lambda: store.get_bytes("nope.pt"),
        lambda: store.stat("nope.pt"),
        lambda: store.get_file("nope.pt", tmp_path / "x"),
    ):
        with pytest.raises(ArtifactNotFoundError) as caught:
            call()
        assert caught.value.uri == f"s3://{store.bucket}/models/nope.pt"
    assert not store.exists("nope.pt")
    assert not (tmp_path / "x").exists()


def test_missing_bucket_is_reported_with_bucket_and_endpoint(
    moto_s3: MotoS3Server, s3_credentials: S3Credentials
) -> None:
    name = unique_bucket("missing")
    store = S3ArtifactStore.connect(
        moto_s3.endpoint, name, credentials=s3_credentials, secure=False, retries=0
    )
    for call in (lambda: store.put_bytes(b"x", "k"), lambda: store.get_bytes("k"), lambda: store.stat("k")):
        with pytest.raises(BucketNotFoundError) as caught:
            call()
        assert caught.value.bucket == name
        assert caught.value.endpoint == moto_s3.endpoint
        assert "create it" in str(caught.value)


def test_open_store_from_an_s3_uri(moto_s3: MotoS3Server, s3_credentials: S3Credentials, bucket: str) -> None:
    options = S3Options(endpoint=moto_s3.endpoint, secure=False, credentials=s3_credentials, retries=0)
    store = open_store(f"s3://{bucket}/team-a/models", s3=options)
    info = store.put_bytes(b"w", "v1/model.pt")
    assert info.uri == f"s3://{bucket}/team-a/models/v1/model.pt"

    parent, key = open_object(info.uri, s3=options)
    assert key == "model.pt"
    assert parent.get_bytes(key, expected_sha256=info.sha256) == b"w"


def test_server_down_is_a_temporary_unavailable_error(s3_credentials: S3Credentials) -> None:
    endpoint = f"127.0.0.1:{free_port()}"  # nothing listens there
    store = S3ArtifactStore.connect(endpoint, "bucket", credentials=s3_credentials, secure=False, retries=0)
    with pytest.raises(StoreUnavailableError) as caught:
        store.put_bytes(b"x", "k")
    assert caught.value.retryable
    assert caught.value.endpoint == endpoint
    with pytest.raises(StoreUnavailableError):
        store.get_bytes("k")


# -- credentials, against a server that checks them -------------------------------------------


@pytest.fixture
def auth_bucket(auth_s3: AuthMotoS3Server) -> str:
    admin = Minio(
        auth_s3.endpoint, auth_s3.admin.access_key, auth_s3.admin.secret_key, secure=False, region=REGION
    )
    name = unique_bucket("auth")
    admin.make_bucket(name)
    admin.put_object(
        name,
        "k",
        io.BytesIO(b"secret model"),
        12,
        metadata={"sha256": hashlib.sha256(b"secret model").hexdigest()},
    )
    return name


def _store(server: AuthMotoS3Server, bucket: str, access: str, secret: str) -> S3ArtifactStore:
    return S3ArtifactStore.connect(
        server.endpoint, bucket, credentials=S3Credentials(access, secret), secure=False, retries=0
    )


def test_valid_credentials_work_on_the_checking_server(auth_s3: AuthMotoS3Server, auth_bucket: str) -> None:
    store = _store(auth_s3, auth_bucket, auth_s3.admin.access_key, auth_s3.admin.secret_key)
    assert store.get_bytes("k") == b"secret model"
    store.put_bytes(b"new", "k2")


def test_wrong_secret_is_invalid_credentials_and_never_leaks_it(
    auth_s3: AuthMotoS3Server, auth_bucket: str
) -> None:
    wrong_secret = "wrong-secret-value-123"
    store = _store(auth_s3, auth_bucket, auth_s3.admin.access_key, wrong_secret)
    for call in (lambda: store.get_bytes("k"), lambda: store.put_bytes(b"x", "k3")):
        with pytest.raises(InvalidCredentialsError) as caught:
            call()
        assert caught.value.code == "SignatureDoesNotMatch"
        message = str(caught.value)
        assert "AWS_SECRET_ACCESS_KEY" in message  # names the Secret key to check ...
        assert wrong_secret not in message and auth_s3.admin.access_key not in message  # ... not values
        assert wrong_secret not in repr(store) and wrong_secret not in repr(
            store.client.__dict__.get("_provider")
        )


def test_unknown_access_key_is_invalid_credentials(auth_s3: AuthMotoS3Server, auth_bucket: str) -> None:
    store = _store(auth_s3, auth_bucket, "AKIAUNKNOWNKEY000000", auth_s3.admin.secret_key)
    with pytest.raises(InvalidCredentialsError) as caught:
        store.get_bytes("k")
    assert caught.value.code == "InvalidAccessKeyId"


def test_user_without_permission_is_access_denied(auth_s3: AuthMotoS3Server, auth_bucket: str) -> None:
    store = _store(auth_s3, auth_bucket, auth_s3.no_policy.access_key, auth_s3.no_policy.secret_key)
    for call in (lambda: store.get_bytes("k"), lambda: store.put_bytes(b"x", "k4")):
        with pytest.raises(AccessDeniedError) as caught:
            call()
        assert not isinstance(caught.value, InvalidCredentialsError)
        assert caught.value.bucket == auth_bucket
