"""Reading and verifying libraries: every bad input gets its reason, a message and the case it concerns."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import time
import tracemalloc
from pathlib import Path

import pytest
from foresight.cli import main as cli_main
from foresight.library.archive import Limits, read_library
from foresight.library.errors import LibraryError, LibraryReason
from foresight.library.verify import verify_path

from .conftest import DELETE, archive, case, document, manifest, tar_gz, write_document


def verify(path: Path, tmp_path: Path, **kwargs: object):  # type: ignore[no-untyped-def]
    work = tmp_path / f"work-{time.monotonic_ns()}"
    work.mkdir()
    return verify_path(path, work, **kwargs)  # type: ignore[arg-type]


# -- the three forms ---------------------------------------------------------------------------------


def test_a_valid_document_archive_and_directory_verify_with_counts(tmp_path: Path) -> None:
    cases = [case("a"), case("b", **{"input.qps": 30000})]
    doc = verify(write_document(tmp_path / "lib.json", cases), tmp_path)
    arc = verify(archive(tmp_path / "lib.tar.gz", cases), tmp_path)
    folder = tmp_path / "dir"
    folder.mkdir()
    (folder / "library.json").write_text(json.dumps(manifest()))
    (folder / "cases.json").write_text(json.dumps(cases))
    dirr = verify(folder, tmp_path)
    for report, form in ((doc, "document"), (arc, "archive"), (dirr, "directory")):
        assert report.ok, report.message
        assert (report.form, report.cases, report.valid, report.invalid) == (form, 2, 2, 0)
        assert report.library is not None and [c.id for c in report.library.cases] == ["a", "b"]
        assert report.name == "test-lib" and report.version == "1.0.0"
    assert doc.checksum == hashlib.sha256((tmp_path / "lib.json").read_bytes()).hexdigest()
    assert arc.checksum == hashlib.sha256((tmp_path / "lib.tar.gz").read_bytes()).hexdigest()


def test_an_archive_wrapped_in_one_top_level_directory_is_read(tmp_path: Path) -> None:
    path = tar_gz(
        tmp_path / "lib.tar.gz",
        {
            "test-lib-1.0.0/library.json": json.dumps(manifest()),
            "test-lib-1.0.0/cases.json": json.dumps([case()]),
        },
    )
    assert verify(path, tmp_path).ok


# -- malformed input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ('{"schemaVersion": 1, "cases": [', "not valid JSON"),
        ('{"schemaVersion": 1, "name": "a", "name": "b", "cases": []}', "appears twice"),
        ('{"schemaVersion": 1, "cases": [{"qps": NaN}]}', "NaN is not a JSON number"),
        ("\x00\x01binary", "neither a .tar.gz archive nor a JSON document"),
        ('"just a string"', "neither a .tar.gz"),
        ('{"schemaVersion": 1, "name": "x"}', 'holds its cases inline as "cases"'),
    ],
)
def test_malformed_json_is_invalid_archive_with_what_is_wrong(
    tmp_path: Path, content: str, needle: str
) -> None:
    path = tmp_path / "lib.json"
    path.write_text(content)
    report = verify(path, tmp_path)
    assert report.reason == LibraryReason.INVALID_ARCHIVE
    assert needle in report.message


def test_malformed_json_reports_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "lib.json"
    path.write_text('{\n  "schemaVersion": 1,\n  "cases": [}\n')
    report = verify(path, tmp_path)
    assert report.reason == LibraryReason.INVALID_ARCHIVE
    assert "line 3" in report.message


def test_a_bare_list_of_cases_from_seed_000_is_refused_with_how_to_wrap_it(tmp_path: Path) -> None:
    path = tmp_path / "tencent_official_v2.1.0.json"
    path.write_text(json.dumps([case()]))
    report = verify(path, tmp_path)
    assert report.reason == LibraryReason.INVALID_ARCHIVE
    assert "bare list of cases" in report.message and "foresight library pack" in report.message


def test_malformed_cases_file_inside_an_archive(tmp_path: Path) -> None:
    path = tar_gz(tmp_path / "lib.tar.gz", {"library.json": json.dumps(manifest()), "cases.json": "[{,]"})
    report = verify(path, tmp_path)
    assert report.reason == LibraryReason.INVALID_ARCHIVE and "cases.json is not valid JSON" in report.message


def test_archive_without_manifest_and_truncated_archive(tmp_path: Path) -> None:
    no_manifest = tar_gz(tmp_path / "a.tar.gz", {"cases.json": "[]"})
    assert verify(no_manifest, tmp_path).reason == LibraryReason.INVALID_ARCHIVE
    good = archive(tmp_path / "b.tar.gz", [case()])
    truncated = tmp_path / "c.tar.gz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    report = verify(truncated, tmp_path)
    assert report.reason == LibraryReason.INVALID_ARCHIVE and "not a readable .tar.gz" in report.message


# -- the manifest ---------------------------------------------------------------------------------


def test_manifest_missing_a_field_names_it(tmp_path: Path) -> None:
    doc = document([case()])
    del doc["licence"]
    path = tmp_path / "lib.json"
    path.write_text(json.dumps(doc))
    report = verify(path, tmp_path)
    assert report.reason == LibraryReason.INVALID_MANIFEST
    assert "licence: is required" in report.message


def test_a_newer_schema_version_says_which_one_this_runtime_reads(tmp_path: Path) -> None:
    report = verify(write_document(tmp_path / "lib.json", [case()], schemaVersion=2), tmp_path)
    assert report.reason == LibraryReason.INVALID_MANIFEST
    assert "schemaVersion 2" in report.message and "reads schemaVersion 1" in report.message


def test_pinned_version_and_name_must_match(tmp_path: Path) -> None:
    path = write_document(tmp_path / "lib.json", [case()])
    report = verify(path, tmp_path, expect_version="2.0.0")
    assert report.reason == LibraryReason.VERSION_MISMATCH and "'1.0.0'" in report.message
    assert verify(path, tmp_path, expect_name="other").reason == LibraryReason.VERSION_MISMATCH


def test_empty_library(tmp_path: Path) -> None:
    report = verify(write_document(tmp_path / "lib.json", []), tmp_path)
    assert report.reason == LibraryReason.EMPTY_LIBRARY
    assert "no cases" in report.message


# -- cases ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "needle"),
    [
        ({"input.qps": -5}, "input.qps", "must be >= 0"),
        ({"output.node_count": 0}, "output.node_count", "must be >= 1"),
        ({"output.architecture_type": "galaxy"}, "output.architecture_type", "is not one of"),
        ({"input.qps": "fast"}, "input.qps", "is not of type number"),
        ({"input.tps": DELETE}, "input.tps", "is required"),
        ({"input.qpss": 3}, "input.qpss", "not a field of this format"),
        ({"metadata.accuracy_rating": 9}, "metadata.accuracy_rating", "must be <= 5"),
        ({"timestamp": "yesterday"}, "timestamp", "does not match"),
        ({"input.tps": 30000}, "input.tps", "exceed qps"),
        ({"output.architecture_type": "standalone"}, "output", "1 node, 1 shard, 0 replicas"),
        ({"output.replica_count": 0}, "output.replica_count", "at least one replica"),
        ({"output.architecture_type": "distributed"}, "output.shard_count", "at least 2 shards"),
        ({"source": "another-lib"}, "source", "is not this library"),
    ],
)
def test_a_bad_case_fails_the_library_naming_case_and_field(
    tmp_path: Path, changes: dict[str, object], field: str, needle: str
) -> None:
    cases = [case("good-1"), case("bad-7", **changes), case("good-2")]
    report = verify(write_document(tmp_path / "lib.json", cases), tmp_path)
    assert report.reason == LibraryReason.INVALID_CASES
    assert (report.cases, report.valid, report.invalid) == (3, 2, 1)
    first = report.findings[0]
    assert (first.case_id, first.index, first.field) == ("bad-7", 1, field)
    assert needle in first.message
    assert "case bad-7 (#1)" in report.message and "nothing of this library is used" in report.message
    assert report.library is None


def test_duplicate_ids_name_the_first_occurrence(tmp_path: Path) -> None:
    report = verify(write_document(tmp_path / "lib.json", [case("x"), case("y"), case("x")]), tmp_path)
    assert report.reason == LibraryReason.INVALID_CASES
    assert report.invalid == 1
    assert str(report.findings[0]) == "case x (#2): id: duplicate: case #0 has the same id"


def test_findings_are_capped_but_counts_cover_every_case(tmp_path: Path) -> None:
    cases = [case(f"c{i}", **{"input.qps": -1}) for i in range(100)]
    report = verify(write_document(tmp_path / "lib.json", cases), tmp_path)
    assert (report.invalid, report.valid) == (100, 0)
    assert len(report.findings) == 20 and report.finding_count >= 20


# -- archive safety ------------------------------------------------------------------------------------


def _tar_with(path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, content in (("library.json", json.dumps(manifest())), ("cases.json", json.dumps([case()]))):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content.encode()))
        tar.addfile(member, io.BytesIO(data) if data else None)
    return path


@pytest.mark.parametrize(
    ("name", "kind", "needle"),
    [
        ("../../etc/cron.d/evil", tarfile.REGTYPE, "escapes the archive root"),
        ("models/../../evil", tarfile.REGTYPE, "escapes the archive root"),
        ("/etc/passwd", tarfile.REGTYPE, "absolute path"),
        ("models/link", tarfile.SYMTYPE, "symbolic link"),
        ("models/hard", tarfile.LNKTYPE, "hard link"),
        ("models/fifo", tarfile.FIFOTYPE, "special file"),
        ("cases.json", tarfile.REGTYPE, "appears twice"),
    ],
)
def test_unsafe_archive_members_are_refused_and_nothing_escapes(
    tmp_path: Path, name: str, kind: bytes, needle: str
) -> None:
    member = tarfile.TarInfo(name)
    member.type = kind
    data = b"evil"
    if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
        member.linkname = "/etc/passwd"
        data = b""
    else:
        member.size = len(data)
    path = _tar_with(tmp_path / "lib.tar.gz", member, data if kind == tarfile.REGTYPE else b"")
    work = tmp_path / "deep" / "work"
    work.mkdir(parents=True)
    report = verify_path(path, work)
    assert report.reason == LibraryReason.UNSAFE_ARCHIVE, report.message
    assert needle in report.message
    assert not (tmp_path / "etc").exists() and not (tmp_path / "evil").exists()
    assert not (tmp_path / "deep" / "evil").exists()


def test_a_directory_with_a_symlink_is_unsafe(tmp_path: Path) -> None:
    folder = tmp_path / "lib"
    folder.mkdir()
    (folder / "library.json").write_text(json.dumps(manifest()))
    (folder / "cases.json").write_text(json.dumps([case()]))
    os.symlink("/etc/hostname", folder / "notes.txt")
    report = verify(folder, tmp_path)
    assert report.reason == LibraryReason.UNSAFE_ARCHIVE and "symbolic link" in report.message


def test_a_gzip_bomb_stops_at_the_uncompressed_limit(tmp_path: Path) -> None:
    path = archive(tmp_path / "bomb.tar.gz", [case()], extra={"models/zeros.bin": b"\0" * (4 * 1024 * 1024)})
    assert path.stat().st_size < 64 * 1024  # 4 MiB of zeros compress to almost nothing
    with pytest.raises(LibraryError) as err:
        read_library(path, tmp_path / "w", Limits(max_total_bytes=1024 * 1024))
    assert err.value.reason == LibraryReason.TOO_LARGE and "once uncompressed" in err.value.message


def test_a_30_mb_library_gets_a_clear_answer_without_being_parsed(tmp_path: Path) -> None:
    one = json.dumps(case("x"))
    n = 30 * 1024 * 1024 // (len(one) + 1) + 1
    path = tmp_path / "big.json"
    with open(path, "w") as fh:
        fh.write(json.dumps(manifest())[:-1] + ', "cases": [')
        fh.write(",".join(one.replace('"x"', f'"c{i}"', 1) for i in range(n)))
        fh.write("]}")
    assert path.stat().st_size > 30 * 1024 * 1024
    tracemalloc.start()
    started = time.perf_counter()
    report = verify(path, tmp_path)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert report.reason == LibraryReason.TOO_LARGE
    assert "30." in report.message and "16.0 MiB" in report.message and "split the library" in report.message
    assert peak < 8 * 1024 * 1024, f"refusing it must not load it (peak {peak} bytes)"
    assert elapsed < 5


# -- models --------------------------------------------------------------------------------------


def _model_archive(tmp_path: Path, sha: str | None = None, missing: bool = False) -> Path:
    config = b'{"name": "lstm"}'
    weights = b"\1\2\3" * 100
    files = [
        {"path": "config.json", "sha256": hashlib.sha256(config).hexdigest(), "size": len(config)},
        {"path": "model.pt", "sha256": sha or hashlib.sha256(weights).hexdigest()},
    ]
    extra: dict[str, bytes | str] = {"models/storage-lstm/config.json": config}
    if not missing:
        extra["models/storage-lstm/model.pt"] = weights
    models = [{"name": "storage-lstm", "type": "lstm", "path": "models/storage-lstm", "files": files}]
    return archive(tmp_path / "lib.tar.gz", [case()], extra=extra, models=models)


def test_models_are_checked_against_their_sha256(tmp_path: Path) -> None:
    assert verify(_model_archive(tmp_path), tmp_path).models == 1
    assert verify(_model_archive(tmp_path), tmp_path).ok
    wrong = verify(_model_archive(tmp_path, sha="0" * 64), tmp_path)
    assert wrong.reason == LibraryReason.INVALID_MODELS and "the manifest says 000" in wrong.message
    missing = verify(_model_archive(tmp_path, missing=True), tmp_path)
    assert missing.reason == LibraryReason.INVALID_MODELS and "missing from the archive" in missing.message


def test_a_single_document_cannot_carry_models(tmp_path: Path) -> None:
    models = [
        {
            "name": "m",
            "type": "lstm",
            "path": "models/m",
            "files": [{"path": "config.json", "sha256": "a" * 64}],
        }
    ]
    report = verify(write_document(tmp_path / "lib.json", [case()], models=models), tmp_path)
    assert report.reason == LibraryReason.INVALID_MODELS and "use an archive" in report.message


# -- the CLI -------------------------------------------------------------------------------------------


def test_verify_cli_exit_codes_and_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write_document(tmp_path / "good.json", [case("a")])
    bad = write_document(tmp_path / "bad.json", [case("a"), case("neg", **{"input.qps": -3})])
    assert cli_main(["library", "verify", str(good)]) == 0
    out = capsys.readouterr().out
    assert "valid: test-lib 1.0.0: 1 cases" in out and "sha256: " in out
    assert cli_main(["library", "verify", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "INVALID (InvalidCases)" in out and "valid 1, invalid 1" in out
    assert "case neg (#1): input.qps: -3 must be >= 0" in out
    assert cli_main(["library", "verify", str(tmp_path / "nope.json")]) == 2
    assert "no such file" in capsys.readouterr().err
    sha = hashlib.sha256(good.read_bytes()).hexdigest()
    assert cli_main(["library", "verify", str(good), "--sha256", sha]) == 0
    capsys.readouterr()
    assert cli_main(["library", "verify", str(good), "--sha256", "f" * 64]) == 1
    assert "ChecksumMismatch" in capsys.readouterr().out
    assert cli_main(["library", "verify", str(bad), "-o", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert (doc["reason"], doc["validCases"], doc["invalidCases"]) == ("InvalidCases", 1, 1)


def test_pack_writes_a_reproducible_archive_that_verifies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "lib"
    folder.mkdir()
    (folder / "library.json").write_text(json.dumps(manifest()))
    (folder / "cases.json").write_text(json.dumps([case("a"), case("b")]))
    assert cli_main(["library", "pack", str(folder), "-o", str(tmp_path / "one.tar.gz")]) == 0
    time.sleep(1.1)  # a different mtime must not change the archive
    assert cli_main(["library", "pack", str(folder), "-o", str(tmp_path / "two.tar.gz")]) == 0
    assert (tmp_path / "one.tar.gz").read_bytes() == (tmp_path / "two.tar.gz").read_bytes()
    out = capsys.readouterr().out
    assert f"sha256: {hashlib.sha256((tmp_path / 'one.tar.gz').read_bytes()).hexdigest()}" in out
    assert verify(tmp_path / "one.tar.gz", tmp_path).ok
    assert cli_main(["library", "pack", str(folder), "-o", str(tmp_path / "one.json")]) == 0
    single = verify(tmp_path / "one.json", tmp_path)
    assert single.ok and single.form == "document" and single.cases == 2
    (folder / "cases.json").write_text(json.dumps([case("a", **{"input.qps": -1})]))
    assert cli_main(["library", "pack", str(folder), "-o", str(tmp_path / "bad.tar.gz")]) == 1
    assert not (tmp_path / "bad.tar.gz").exists()
