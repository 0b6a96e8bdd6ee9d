"""The ModelLibrary fetch Job against a real HTTP server on 127.0.0.1: right and wrong sha256, a
server that is down or answers errors, a download that is too large; the active version changes only
when a library was fully verified, and a failed fetch leaves the previous one active."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from foresight.artifacts import LocalArtifactStore
from foresight.cli import main as cli_main
from foresight.library.builtin import builtin_path
from foresight.library.job import EXIT_RETRY, FetchConfig, execute, run_fetch
from foresight.library.store import LibraryStore

from tests.servers.static_http import Route, StaticHTTPServer

pytestmark = pytest.mark.integration


@pytest.fixture
def http() -> Iterator[StaticHTTPServer]:
    with StaticHTTPServer() as server:
        yield server


def packed(tmp_path: Path, version: str) -> bytes:
    """The built-in postgresql-oltp library as version ``version``, packed as a publisher would."""
    doc = json.loads(builtin_path("postgresql-oltp").read_text())
    doc["version"] = version
    if version != "2026.12":
        doc["cases"] = doc["cases"][:200]  # another version, other content
    src = tmp_path / f"src-{version}.json"
    src.write_text(json.dumps(doc))
    out = tmp_path / f"postgresql-oltp-{version}.tar.gz"
    assert cli_main(["library", "pack", str(src), "-o", str(out)]) == 0
    return out.read_bytes()


def fetch(tmp_path: Path, url: str, version: str, sha256: str, **extra: Any) -> tuple[int, dict[str, Any]]:
    cfg = FetchConfig.model_validate(
        {
            "name": "pg-https",
            "namespace": "ml-platform",
            "generation": 1,
            "store": (tmp_path / "store").as_uri(),
            "spec": {"source": {"url": url}, "version": version, "sha256": sha256},
            **extra,
        }
    )
    work = tmp_path / f"work-{sum(1 for _ in tmp_path.iterdir())}"
    work.mkdir()
    return run_fetch(cfg, environ={}, workdir=work, emit=lambda e: None)


def pointer_bytes(tmp_path: Path) -> bytes:
    return (tmp_path / "store" / "modellibraries" / "postgresql-oltp" / "active.json").read_bytes()


def test_right_sha_activates_wrong_sha_keeps_the_previous_version(
    http: StaticHTTPServer, tmp_path: Path
) -> None:
    v1, v2 = packed(tmp_path, "2026.12"), packed(tmp_path, "2026.12.1")
    http.routes["/lib/v1.tar.gz"] = Route(v1)
    http.routes["/lib/v2.tar.gz"] = Route(v2)
    sha1, sha2 = hashlib.sha256(v1).hexdigest(), hashlib.sha256(v2).hexdigest()

    code, doc = fetch(tmp_path, http.url("/lib/v1.tar.gz"), "2026.12", sha1)
    assert code == 0 and (doc["phase"], doc["reason"], doc["activeVersion"]) == (
        "Ready",
        "Active",
        "2026.12",
    ), doc
    assert doc["checksum"] == sha1 and doc["source"] == {
        "kind": "url",
        "location": http.url("/lib/v1.tar.gz"),
        "reachable": True,
        "httpStatus": 200,
        "checkedTime": doc["fetchedTime"],
    }

    code, doc = fetch(tmp_path, http.url("/lib/v2.tar.gz"), "2026.12.1", sha2)
    assert (doc["activeVersion"], doc["previousVersion"], doc["cases"]) == ("2026.12.1", "2026.12", 200)
    active_before = pointer_bytes(tmp_path)

    # The publisher replaced v1's file: the pinned sha256 no longer matches.
    http.routes["/lib/v1.tar.gz"] = Route(v2)
    code, doc = fetch(tmp_path, http.url("/lib/v1.tar.gz"), "2026.12", sha1)
    assert code == 0 and (doc["phase"], doc["reason"], doc["retryable"]) == (
        "Failed",
        "ChecksumMismatch",
        False,
    )
    assert sha2 in doc["message"] and sha1 in doc["message"] and "stays active" in doc["message"]
    assert "cases" not in doc  # nothing of it was even parsed
    assert pointer_bytes(tmp_path) == active_before
    library, ref = LibraryStore(LocalArtifactStore(tmp_path / "store")).load("postgresql-oltp")
    assert ref.version == "2026.12.1" and len(library.cases) == 200


def test_missing_file_and_server_errors(http: StaticHTTPServer, tmp_path: Path) -> None:
    code, doc = fetch(tmp_path, http.url("/nothing.tar.gz"), "1", "a" * 64)
    assert code == 0 and doc["reason"] == "SourceNotFound" and doc["source"]["httpStatus"] == 404
    http.routes["/flaky.tar.gz"] = Route(b"upstream down", 503)
    code, doc = fetch(tmp_path, http.url("/flaky.tar.gz"), "1", "a" * 64)
    assert code == EXIT_RETRY and doc["reason"] == "SourceUnreachable" and doc["retryable"] is True
    http.routes["/private.tar.gz"] = Route(b"no", 403)
    assert fetch(tmp_path, http.url("/private.tar.gz"), "1", "a" * 64)[1]["reason"] == "AccessDenied"


def test_an_unreachable_server_is_retryable_and_the_token_never_leaks(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    url = f"http://user:pw@127.0.0.1:{port}/lib.tar.gz?X-Amz-Signature=SECRET-TOKEN"
    code, doc = fetch(tmp_path, url, "1", "a" * 64, timeoutSeconds=3)
    assert code == EXIT_RETRY and doc["reason"] == "SourceUnreachable" and doc["source"]["reachable"] is False
    assert doc["source"]["location"] == f"http://127.0.0.1:{port}/lib.tar.gz"
    text = json.dumps(doc)
    assert "SECRET-TOKEN" not in text and "pw@" not in text


def test_a_download_over_the_limit_is_cut_off(http: StaticHTTPServer, tmp_path: Path) -> None:
    http.routes["/huge.tar.gz"] = Route(b"\x1f\x8b" + b"\0" * (3 * 1024 * 1024))
    code, doc = fetch(tmp_path, http.url("/huge.tar.gz"), "1", "a" * 64, limits={"maxArchiveMib": 1})
    assert code == 0 and doc["reason"] == "TooLarge", doc


def test_malformed_and_unsafe_archives_behind_a_url_activate_nothing(
    http: StaticHTTPServer, tmp_path: Path
) -> None:
    good = packed(tmp_path, "2026.12")
    http.routes["/good.tar.gz"] = Route(good)
    assert fetch(tmp_path, http.url("/good.tar.gz"), "2026.12", hashlib.sha256(good).hexdigest())[0] == 0
    before = pointer_bytes(tmp_path)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        evil = tarfile.TarInfo("../../escaped.json")
        evil.size = 2
        tar.addfile(evil, io.BytesIO(b"{}"))
    bad = {
        "/unsafe.tar.gz": buf.getvalue(),
        "/malformed.json": b'{"schemaVersion": 1, "cases": [',
        "/empty.json": json.dumps(
            {
                "schemaVersion": 1,
                "name": "postgresql-oltp",
                "version": "9",
                "description": "d",
                "licence": "x",
                "cases": [],
            }
        ).encode(),
    }
    expected = {
        "/unsafe.tar.gz": "UnsafeArchive",
        "/malformed.json": "InvalidArchive",
        "/empty.json": "EmptyLibrary",
    }
    for path, body in bad.items():
        http.routes[path] = Route(body)
        code, doc = fetch(tmp_path, http.url(path), "9", hashlib.sha256(body).hexdigest())
        assert code == 0 and doc["reason"] == expected[path], (path, doc)
        assert pointer_bytes(tmp_path) == before
    assert not (tmp_path / "escaped.json").exists()


def test_the_job_command_end_to_end(http: StaticHTTPServer, tmp_path: Path) -> None:
    data = packed(tmp_path, "2026.12")
    http.routes["/lib.tar.gz"] = Route(data)
    cfg = tmp_path / "job.json"
    cfg.write_text(
        json.dumps(
            {
                "name": "pg",
                "namespace": "ns",
                "store": str(tmp_path / "store"),
                "spec": {
                    "source": {"url": http.url("/lib.tar.gz")},
                    "version": "2026.12",
                    "sha256": hashlib.sha256(data).hexdigest(),
                },
            }
        )
    )
    term = tmp_path / "termination-log"
    code, _ = execute(str(cfg), environ={"FORESIGHT_TERMINATION_LOG": str(term)}, stdout=io.StringIO())
    assert code == 0 and json.loads(term.read_text())["activeVersion"] == "2026.12"
    assert http.requests == ["/lib.tar.gz"]
