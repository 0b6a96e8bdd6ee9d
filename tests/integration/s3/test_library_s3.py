"""The ModelLibrary fetch Job with S3 on both ends (moto over HTTP on 127.0.0.1): a library object
published without a recorded checksum (as `aws s3 cp` leaves it), verified against spec.sha256,
stored and activated in an S3 library store; readers of the S3 pointer never see a mix."""

from __future__ import annotations

import hashlib
import io
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from foresight.artifacts import S3Options, open_store
from foresight.artifacts.s3 import S3Credentials
from foresight.cli import main as cli_main
from foresight.library.builtin import builtin_path
from foresight.library.job import FetchConfig, run_fetch
from foresight.library.store import LibraryStore
from foresight.library.verify import verify_path
from minio import Minio

from tests.servers.s3 import MotoS3Server

pytestmark = pytest.mark.integration


def packed(tmp_path: Path, version: str, cases: int) -> bytes:
    doc = json.loads(builtin_path("mysql-tidb").read_text())
    doc["version"], doc["cases"] = version, doc["cases"][:cases]
    src = tmp_path / f"src-{version}.json"
    src.write_text(json.dumps(doc))
    out = tmp_path / f"lib-{version}.tar.gz"
    assert cli_main(["library", "pack", str(src), "-o", str(out)]) == 0
    return out.read_bytes()


def env(moto_s3: MotoS3Server) -> dict[str, str]:
    keys = moto_s3.credentials
    return {"AWS_ACCESS_KEY_ID": keys.access_key, "AWS_SECRET_ACCESS_KEY": keys.secret_key,
            "FORESIGHT_SOURCE_AWS_ACCESS_KEY_ID": keys.access_key,
            "FORESIGHT_SOURCE_AWS_SECRET_ACCESS_KEY": keys.secret_key}  # fmt: skip


def fetch(
    tmp_path: Path, moto_s3: MotoS3Server, bucket: str, key: str, version: str, sha: str
) -> dict[str, Any]:
    cfg = FetchConfig.model_validate({
        "name": "mysql", "namespace": "dbs", "store": f"s3://{bucket}/platform",
        "storeEndpoint": moto_s3.endpoint, "storeInsecure": True, "timeoutSeconds": 10,
        "spec": {"source": {"s3": f"s3://{bucket}/{key}",
                            "store": {"endpoint": moto_s3.endpoint, "insecure": True}},
                 "version": version, "sha256": sha},
    })  # fmt: skip
    work = tmp_path / f"work-{sum(1 for _ in tmp_path.iterdir())}"
    work.mkdir()
    code, doc = run_fetch(cfg, environ=env(moto_s3), workdir=work, emit=lambda e: None)
    assert code in (0, 75)
    return doc


def test_s3_source_and_s3_store(
    tmp_path: Path, moto_s3: MotoS3Server, raw_client: Minio, bucket: str
) -> None:
    v1, v2 = packed(tmp_path, "1", 120), packed(tmp_path, "2", 150)
    for key, data in (("pub/v1.tar.gz", v1), ("pub/v2.tar.gz", v2)):
        raw_client.put_object(bucket, key, io.BytesIO(data), len(data))
    sha1, sha2 = hashlib.sha256(v1).hexdigest(), hashlib.sha256(v2).hexdigest()

    doc = fetch(tmp_path, moto_s3, bucket, "pub/v1.tar.gz", "1", sha1)
    assert (doc["phase"], doc["reason"], doc["activeVersion"], doc["cases"]) == (
        "Ready",
        "Active",
        "1",
        120,
    ), doc
    assert doc["pointer"] == f"s3://{bucket}/platform/modellibraries/mysql-tidb/active.json"
    assert doc["storedUri"] == f"s3://{bucket}/platform/modellibraries/mysql-tidb/versions/1"
    doc = fetch(tmp_path, moto_s3, bucket, "pub/v2.tar.gz", "2", sha2)
    assert (doc["activeVersion"], doc["previousVersion"]) == ("2", "1")
    before = raw_client.get_object(bucket, "platform/modellibraries/mysql-tidb/active.json").read()

    wrong = fetch(tmp_path, moto_s3, bucket, "pub/v1.tar.gz", "1", sha2)
    assert (wrong["phase"], wrong["reason"]) == ("Failed", "ChecksumMismatch") and not wrong["retryable"]
    missing = fetch(tmp_path, moto_s3, bucket, "pub/v3.tar.gz", "3", sha2)
    assert missing["reason"] == "SourceNotFound", missing
    assert raw_client.get_object(bucket, "platform/modellibraries/mysql-tidb/active.json").read() == before


def test_readers_of_the_s3_pointer_never_see_a_mix(
    tmp_path: Path, moto_s3: MotoS3Server, raw_client: Minio, bucket: str
) -> None:
    creds = S3Credentials(moto_s3.credentials.access_key, moto_s3.credentials.secret_key)
    store = open_store(f"s3://{bucket}/libs", s3=S3Options(endpoint=moto_s3.endpoint, secure=False,
                                                           credentials=creds, retries=0))  # fmt: skip
    lib_store = LibraryStore(store)
    refs = {}
    for version, cases in (("1", 40), ("2", 60)):
        path = tmp_path / f"{version}.tar.gz"
        path.write_bytes(packed(tmp_path, version, cases))
        (tmp_path / f"w{version}").mkdir()
        report = verify_path(path, tmp_path / f"w{version}")
        assert report.library is not None and report.raw is not None
        refs[version], _, _ = lib_store.put_version(report.library, report.raw.cases, models_root=None,
                                                    verification={"checksum": report.checksum})  # fmt: skip
    lib_store.activate("mysql-tidb", refs["1"])
    stop = threading.Event()
    seen: list[tuple[str, int]] = []
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for i in range(20):
                lib_store.activate("mysql-tidb", refs["2" if i % 2 == 0 else "1"])
        except BaseException as exc:
            errors.append(exc)
        finally:
            stop.set()

    def reader() -> None:
        try:
            while not stop.is_set():
                library, ref = lib_store.load("mysql-tidb")
                seen.append((ref.version, len(library.cases)))
                assert library.version == ref.version
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=writer),
        threading.Thread(target=reader),
        threading.Thread(target=reader),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert seen and all(count == {"1": 40, "2": 60}[version] for version, count in seen)
