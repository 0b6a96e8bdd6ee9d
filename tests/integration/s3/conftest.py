"""S3 fixtures: one in-process moto server per session, a fresh bucket per test, and a moto child
process with IAM authentication for the credential tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from foresight.artifacts.s3 import S3ArtifactStore, S3Credentials
from minio import Minio

from tests.servers.s3 import REGION, AuthMotoS3Server, MotoS3Server, unique_bucket


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3Server]:
    with MotoS3Server() as server:
        yield server


@pytest.fixture
def s3_credentials(moto_s3: MotoS3Server) -> S3Credentials:
    return S3Credentials(moto_s3.credentials.access_key, moto_s3.credentials.secret_key)


@pytest.fixture
def raw_client(moto_s3: MotoS3Server) -> Minio:
    """A plain minio client, for arranging and inspecting state behind the store's back."""
    return Minio(
        moto_s3.endpoint,
        moto_s3.credentials.access_key,
        moto_s3.credentials.secret_key,
        secure=False,
        region=REGION,
    )


@pytest.fixture
def bucket(raw_client: Minio) -> str:
    name = unique_bucket()
    raw_client.make_bucket(name)
    return name


@pytest.fixture
def store(moto_s3: MotoS3Server, s3_credentials: S3Credentials, bucket: str) -> S3ArtifactStore:
    return S3ArtifactStore.connect(
        moto_s3.endpoint,
        bucket,
        "models",
        credentials=s3_credentials,
        secure=False,
        retries=0,
        part_size=5 * 1024 * 1024,
    )


@pytest.fixture(scope="module")
def auth_s3() -> Iterator[AuthMotoS3Server]:
    with AuthMotoS3Server() as server:
        yield server
