"""The fetch Job on a local store: built-in and ConfigMap sources, each failure's result, and a
termination message the operator can always parse."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from foresight.api.modellibrary import ModelLibraryStatus
from foresight.artifacts import LocalArtifactStore
from foresight.library.job import EXIT_RETRY, FetchConfig, execute, run_fetch, termination_message
from foresight.library.store import LibraryStore

from .conftest import case, document


def config(tmp_path: Path, spec: dict[str, Any], **extra: Any) -> FetchConfig:
    return FetchConfig.model_validate(
        {
            "name": "capacity-planning",
            "namespace": "ml-platform",
            "generation": 3,
            "spec": spec,
            "store": (tmp_path / "store").as_uri(),
            **extra,
        }
    )


def run(cfg: FetchConfig, tmp_path: Path) -> tuple[int, dict[str, Any], list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    work = tmp_path / f"work-{len(list(tmp_path.iterdir()))}"
    work.mkdir()
    code, doc = run_fetch(cfg, environ={}, workdir=work, emit=events.append)
    return code, doc, events


def pointer(tmp_path: Path, name: str) -> bytes | None:
    path = tmp_path / "store" / "modellibraries" / name / "active.json"
    return path.read_bytes() if path.exists() else None


def status_fields(doc: dict[str, Any]) -> dict[str, Any]:
    """The result's keys that are status fields must validate as ModelLibraryStatus."""
    names = {f.alias for f in ModelLibraryStatus.model_fields.values() if f.alias}
    body = {k: v for k, v in doc.items() if k in names}
    ModelLibraryStatus.model_validate(body)
    return body


def test_builtin_library_becomes_ready_and_active(tmp_path: Path) -> None:
    code, doc, events = run(
        config(tmp_path, {"source": {"builtin": "postgresql-oltp"}, "version": "2026.12"}), tmp_path
    )
    assert code == 0, doc
    assert (doc["phase"], doc["reason"], doc["active"]) == ("Ready", "Active", True)
    assert (doc["libraryName"], doc["version"], doc["cases"], doc["validCases"], doc["invalidCases"]) == (
        "postgresql-oltp",
        "2026.12",
        300,
        300,
        0,
    )
    assert doc["activeVersion"] == "2026.12" and doc["activeOwner"] == "ml-platform/capacity-planning"
    assert doc["source"]["kind"] == "builtin" and doc["source"]["reachable"] is True
    assert doc["quality"]["architectureAccuracy"] > doc["quality"]["baselineAccuracy"]
    assert doc["pointer"].endswith("modellibraries/postgresql-oltp/active.json")
    assert doc["generation"] == 3
    assert [e["event"] for e in events] == ["fetch", "fetched", "verified", "stored", "pointer"]
    status_fields(doc)
    library, ref = LibraryStore(LocalArtifactStore(tmp_path / "store")).load("postgresql-oltp")
    assert len(library.cases) == 300 and ref.checksum == doc["checksum"]


def test_configmap_library_and_a_second_version_keeps_the_first_as_previous(tmp_path: Path) -> None:
    mount = tmp_path / "cm"
    mount.mkdir()
    (mount / "library.json").write_text(json.dumps(document([case("a")])))
    spec = {"source": {"configMap": {"name": "team-cases"}}, "version": "1.0.0"}
    code, doc, _ = run(config(tmp_path, spec, configMapDir=str(mount)), tmp_path)
    assert code == 0 and doc["reason"] == "Active", doc
    assert doc["source"]["location"] == "configmap:team-cases/library.json"
    (mount / "library.json").write_text(json.dumps(document([case("a"), case("b")], version="1.1.0")))
    code, doc, _ = run(config(tmp_path, {**spec, "version": "1.1.0"}, configMapDir=str(mount)), tmp_path)
    assert (doc["activeVersion"], doc["previousVersion"], doc["cases"]) == ("1.1.0", "1.0.0", 2)


def test_a_failure_leaves_the_active_version_active(tmp_path: Path) -> None:
    mount = tmp_path / "cm"
    mount.mkdir()
    (mount / "library.json").write_text(json.dumps(document([case("a")])))
    spec = {"source": {"configMap": {"name": "team-cases"}}, "version": "1.0.0"}
    assert run(config(tmp_path, spec, configMapDir=str(mount)), tmp_path)[0] == 0
    before = pointer(tmp_path, "test-lib")
    bad = [case("a"), case("b", **{"input.qps": -1}), case("c", **{"output.node_count": 0})]
    (mount / "library.json").write_text(json.dumps(document(bad, version="2.0.0")))
    code, doc, _ = run(config(tmp_path, {**spec, "version": "2.0.0"}, configMapDir=str(mount)), tmp_path)
    assert code == 0  # a verdict: retrying cannot fix it
    assert (doc["phase"], doc["reason"], doc["retryable"]) == ("Failed", "InvalidCases", False)
    # The result says what stays in use: this ModelLibrary's version 1.0.0, still the active one.
    assert (doc["active"], doc["activeVersion"], doc["activeOwner"]) == (
        True,
        "1.0.0",
        "ml-platform/capacity-planning",
    )
    assert (doc["cases"], doc["validCases"], doc["invalidCases"]) == (3, 1, 2)
    assert doc["invalidReasons"][0] == "case b (#1): input.qps: -1 must be >= 0"
    assert "nothing was activated" in doc["message"]
    assert pointer(tmp_path, "test-lib") == before
    status_fields(doc)


@pytest.mark.parametrize(
    ("spec", "reason", "needle"),
    [
        ({"source": {"builtin": "oracle-exadata"}, "version": "1"}, "UnknownBuiltin", "ships: mysql-tidb"),
        ({"source": {"builtin": "postgresql-oltp"}, "version": "2025.01"}, "VersionMismatch", "'2026.12'"),
        (
            {"source": {"builtin": "postgresql-oltp"}, "version": "2026.12", "sha256": "a" * 64},
            "ChecksumMismatch",
            "spec.sha256",
        ),
        (
            {"source": {"url": "https://example.com/x.tar.gz"}, "version": "1"},
            "InvalidSpec",
            "needs spec.sha256",
        ),
        (
            {"source": {"configMap": {"name": "cm", "key": "other.json"}}, "version": "1"},
            "SourceNotFound",
            "its keys: library.json",
        ),
    ],
)
def test_each_failure_has_its_reason_and_says_what_to_do(
    tmp_path: Path, spec: dict[str, Any], reason: str, needle: str
) -> None:
    mount = tmp_path / "cm"
    mount.mkdir()
    (mount / "library.json").write_text("{}")
    (mount / "..data").mkdir()  # what a kubelet's ConfigMap volume also holds
    code, doc, _ = run(config(tmp_path, spec, configMapDir=str(mount)), tmp_path)
    assert code == 0 and doc["phase"] == "Failed" and doc["reason"] == reason, doc
    assert needle in doc["message"]
    assert doc["active"] is False and "activeVersion" not in doc
    assert (
        not (tmp_path / "store" / "modellibraries").exists() or pointer(tmp_path, "postgresql-oltp") is None
    )


def test_active_false_stores_without_activating_and_withdraws(tmp_path: Path) -> None:
    spec = {"source": {"builtin": "mysql-tidb"}, "version": "2026.12"}
    assert run(config(tmp_path, spec), tmp_path)[1]["activeVersion"] == "2026.12"
    code, doc, _ = run(config(tmp_path, {**spec, "active": False}), tmp_path)
    assert code == 0 and (doc["phase"], doc["reason"], doc["active"]) == ("Ready", "Inactive", False)
    assert "activeVersion" not in doc and doc["previousVersion"] == "2026.12"


def test_an_unreachable_store_is_retryable(tmp_path: Path) -> None:
    cfg = config(
        tmp_path,
        {"source": {"builtin": "mysql-tidb"}, "version": "2026.12"},
        store="s3://bucket/prefix",
        storeEndpoint="127.0.0.1:9",
        storeInsecure=True,
        timeoutSeconds=2,
    )
    code, doc, _ = run(cfg, tmp_path)
    assert code == EXIT_RETRY and doc["retryable"] is True and doc["reason"] == "StoreUnavailable", doc


def test_termination_message_stays_parseable_under_the_limit() -> None:
    doc = {
        "phase": "Failed",
        "reason": "InvalidCases",
        "message": "x" * 10_000,
        "invalidReasons": ["case y: " + "z" * 2000] * 5,
        "modelArtifacts": [{"name": f"m{i}", "uri": "s3://b/" + "p" * 200} for i in range(50)],
    }
    text = termination_message(doc)
    assert len(text.encode()) <= 4096
    parsed = json.loads(text)
    assert parsed["reason"] == "InvalidCases" and parsed["modelArtifactCount"] == 50
    small = {"phase": "Ready", "reason": "Active", "message": "ok"}
    assert json.loads(termination_message(small)) == small


def test_execute_writes_the_termination_message_and_handles_a_bad_config(tmp_path: Path) -> None:
    term = tmp_path / "termination-log"
    cfg = tmp_path / "job.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "name": "lib",
                "namespace": "ns",
                "generation": 1,
                "store": str(tmp_path / "s"),
                "spec": {"source": {"builtin": "mysql-tidb"}, "version": "2026.12"},
            }
        )
    )
    out = io.StringIO()
    code, doc = execute(str(cfg), environ={"FORESIGHT_TERMINATION_LOG": str(term)}, stdout=out)
    assert code == 0 and doc["reason"] == "Active"
    assert json.loads(term.read_text())["activeVersion"] == "2026.12"
    last = json.loads(out.getvalue().splitlines()[-1])
    assert last["event"] == "result" and last["exitCode"] == 0
    cfg.write_text("name: lib\nspec: {version: '1'}\n")
    code, doc = execute(str(cfg), environ={"FORESIGHT_TERMINATION_LOG": str(term)}, stdout=io.StringIO())
    assert code == 0 and doc["reason"] == "InvalidSpec" and "spec.source" in doc["message"]
    assert json.loads(term.read_text())["reason"] == "InvalidSpec"


def test_a_library_another_active_modellibrary_holds_is_stored_but_not_taken_over(tmp_path: Path) -> None:
    spec = {"source": {"builtin": "mysql-tidb"}, "version": "2026.12"}
    first = config(tmp_path, spec, name="tidb-a")
    assert run(first, tmp_path)[1]["activeOwner"] == "ml-platform/tidb-a"
    before = pointer(tmp_path, "mysql-tidb")
    second = config(tmp_path, spec, name="tidb-b", protectedOwners=["ml-platform/tidb-a"])
    code, doc, _ = run(second, tmp_path)
    assert code == 0 and (doc["phase"], doc["reason"], doc["active"]) == ("Failed", "ActiveConflict", False)
    assert doc["activeOwner"] == "ml-platform/tidb-a" and "ml-platform/tidb-a" in doc["message"]
    assert doc["storedUri"].endswith("modellibraries/mysql-tidb/versions/2026.12")
    assert pointer(tmp_path, "mysql-tidb") == before
    # Once tidb-a no longer wants to be active (withdrawn or deleted), tidb-b takes over.
    code, doc, _ = run(config(tmp_path, spec, name="tidb-b"), tmp_path)
    assert (doc["reason"], doc["active"], doc["activeOwner"]) == ("Active", True, "ml-platform/tidb-b")


def test_withdraw_needs_no_source_and_keeps_the_version_stored(tmp_path: Path) -> None:
    mount = tmp_path / "cm"
    mount.mkdir()
    (mount / "library.json").write_text(json.dumps(document([case("a"), case("b")])))
    spec = {"source": {"configMap": {"name": "team-cases"}}, "version": "1.0.0"}
    assert run(config(tmp_path, spec, configMapDir=str(mount)), tmp_path)[1]["active"] is True
    (mount / "library.json").unlink()  # the source is gone: withdrawing must not need it
    withdraw = config(tmp_path, {**spec, "active": False}, action="withdraw", libraryName="test-lib")
    code, doc, events = run(withdraw, tmp_path)
    assert code == 0 and (doc["phase"], doc["reason"], doc["active"]) == ("Ready", "Inactive", False)
    assert (doc["libraryName"], doc["version"], doc["cases"], doc["previousVersion"]) == (
        "test-lib",
        "1.0.0",
        2,
        "1.0.0",
    )
    assert "activeVersion" not in doc and "source" not in doc
    assert [e["event"] for e in events] == ["pointer"]
    status_fields(doc)
    # Without the library's name there is nothing to withdraw from: a clear refusal, not a crash.
    code, doc, _ = run(config(tmp_path, {**spec, "active": False}, action="withdraw"), tmp_path)
    assert code == 0 and doc["reason"] == "InvalidSpec" and "libraryName" in doc["message"]


def test_a_checksum_mismatch_reports_the_version_that_stays_active(tmp_path: Path) -> None:
    spec = {"source": {"builtin": "postgresql-oltp"}, "version": "2026.12"}
    assert run(config(tmp_path, spec), tmp_path)[1]["active"] is True
    code, doc, _ = run(config(tmp_path, {**spec, "sha256": "b" * 64}), tmp_path)
    assert code == 0 and (doc["reason"], doc["active"], doc["activeVersion"]) == (
        "ChecksumMismatch",
        True,
        "2026.12",
    )
    assert "cases" not in doc  # nothing of it was read
    assert doc["libraryName"] == "postgresql-oltp"  # the library whose version stays active
