"""Stored versions and the active pointer on a local artifact store: one-step activation, rollback,
immutability, and readers that never see a mix of versions."""

from __future__ import annotations

import json
import tempfile
import threading
import time
from pathlib import Path

import pytest
from foresight.artifacts import LocalArtifactStore
from foresight.library.errors import LibraryError, LibraryReason
from foresight.library.store import LibraryStore
from foresight.library.verify import verify_path

from .conftest import case, write_document


def verified(tmp_path: Path, version: str, ids: list[str]):  # type: ignore[no-untyped-def]
    path = write_document(tmp_path / f"lib-{version}.json", [case(i) for i in ids], version=version)
    report = verify_path(path, Path(tempfile.mkdtemp(dir=tmp_path)))
    assert report.ok, report.message
    return report


def put(lib_store: LibraryStore, report) -> tuple:  # type: ignore[no-untyped-def, type-arg]
    return lib_store.put_version(
        report.library,
        report.raw.cases,
        models_root=None,
        verification={"checksum": report.checksum, "cases": report.cases, "models": 0},
    )


def test_activate_load_replace_and_roll_back(tmp_path: Path) -> None:
    lib_store = LibraryStore(LocalArtifactStore(tmp_path / "store"))
    v1, v2 = verified(tmp_path, "1", ["a", "b"]), verified(tmp_path, "2", ["a", "b", "c"])
    ref1, models, written = put(lib_store, v1)
    assert written and models == [] and ref1.uri.endswith("modellibraries/test-lib/versions/1")
    pointer = lib_store.activate("test-lib", ref1, owner="ns/one")
    assert pointer.active is not None and pointer.active.version == "1" and pointer.previous is None
    library, ref = lib_store.load("test-lib")
    assert [c.id for c in library.cases] == ["a", "b"] and ref.checksum == v1.checksum

    ref2, _, _ = put(lib_store, v2)
    pointer = lib_store.activate("test-lib", ref2, owner="ns/one")
    assert (pointer.active.version, pointer.previous.version) == ("2", "1")  # type: ignore[union-attr]
    assert [c.id for c in lib_store.load("test-lib")[0].cases] == ["a", "b", "c"]
    assert lib_store.versions("test-lib") == ["1", "2"] and lib_store.names() == ["test-lib"]

    # Rollback is activating the previous version again; both stay stored.
    pointer = lib_store.activate("test-lib", pointer.previous, owner="ns/one")  # type: ignore[arg-type]
    assert (pointer.active.version, pointer.previous.version) == ("1", "2")  # type: ignore[union-attr]
    assert [c.id for c in lib_store.load("test-lib")[0].cases] == ["a", "b"]
    assert [c.id for c in lib_store.load("test-lib", "2")[0].cases] == ["a", "b", "c"]
    doc = json.loads((tmp_path / "store" / "modellibraries" / "test-lib" / "active.json").read_text())
    assert doc["active"]["version"] == "1" and doc["active"]["owner"] == "ns/one" and doc["format"] == 1


def test_activating_the_active_version_again_writes_nothing(tmp_path: Path) -> None:
    lib_store = LibraryStore(LocalArtifactStore(tmp_path / "store"))
    ref, _, _ = put(lib_store, verified(tmp_path, "1", ["a"]))
    first = lib_store.activate("test-lib", ref, owner="ns/one")
    pointer_file = tmp_path / "store" / "modellibraries" / "test-lib" / "active.json"
    before = pointer_file.stat().st_mtime_ns
    assert lib_store.activate("test-lib", ref, owner="ns/one") == first
    assert pointer_file.stat().st_mtime_ns == before


def test_a_stored_version_never_changes(tmp_path: Path) -> None:
    lib_store = LibraryStore(LocalArtifactStore(tmp_path / "store"))
    ref, _, written = put(lib_store, verified(tmp_path, "1", ["a"]))
    again, _, written_again = put(lib_store, verified(tmp_path, "1", ["a"]))
    assert written and not written_again and again.manifest_sha256 == ref.manifest_sha256
    with pytest.raises(LibraryError) as err:
        put(lib_store, verified(tmp_path, "1", ["a", "z"]))
    assert err.value.reason == LibraryReason.VERSION_CONFLICT and "needs a new version" in err.value.message


def test_withdraw_leaves_no_active_version_and_keeps_it_as_previous(tmp_path: Path) -> None:
    lib_store = LibraryStore(LocalArtifactStore(tmp_path / "store"))
    ref, _, _ = put(lib_store, verified(tmp_path, "1", ["a"]))
    lib_store.activate("test-lib", ref)
    assert lib_store.withdraw("test-lib", "9") is not None  # another version: nothing changes
    assert lib_store.load("test-lib")[1].version == "1"
    pointer = lib_store.withdraw("test-lib", "1")
    assert pointer is not None and pointer.active is None and pointer.previous.version == "1"  # type: ignore[union-attr]
    with pytest.raises(LibraryError) as err:
        lib_store.load("test-lib")
    assert err.value.reason == LibraryReason.INACTIVE


def test_a_tampered_version_is_refused_by_readers(tmp_path: Path) -> None:
    lib_store = LibraryStore(LocalArtifactStore(tmp_path / "store"))
    ref, _, _ = put(lib_store, verified(tmp_path, "1", ["a"]))
    lib_store.activate("test-lib", ref)
    cases_file = tmp_path / "store" / "modellibraries" / "test-lib" / "versions" / "1" / "cases.json"
    cases_file.write_text(cases_file.read_text().replace('"qps":25000', '"qps":1'))
    with pytest.raises(LibraryError) as err:
        lib_store.load("test-lib")
    assert err.value.reason == LibraryReason.CHECKSUM_MISMATCH


def test_readers_never_see_a_mix_while_the_pointer_flips(tmp_path: Path) -> None:
    """Writers switch between two versions as fast as they can; every read is one whole version."""
    lib_store = LibraryStore(LocalArtifactStore(tmp_path / "store"))
    refs = {}
    for version, ids in (("1", [f"v1-{i}" for i in range(30)]), ("2", [f"v2-{i}" for i in range(45)])):
        refs[version], _, _ = put(lib_store, verified(tmp_path, version, ids))
    lib_store.activate("test-lib", refs["1"])
    stop = threading.Event()
    seen: list[tuple[str, int, set[str]]] = []
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for i in range(100):
                lib_store.activate("test-lib", refs["2" if i % 2 == 0 else "1"])
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            stop.set()

    def reader() -> None:
        try:
            while not stop.is_set():
                library, ref = lib_store.load("test-lib")
                seen.append((ref.version, len(library.cases), {c.id.split("-")[0] for c in library.cases}))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert len(seen) > 20
    for version, count, prefixes in seen:
        assert prefixes == {f"v{version}"} and count == (30 if version == "1" else 45)
    assert {v for v, _, _ in seen} == {"1", "2"}


def test_a_damaged_pointer_is_reported_at_once_not_waited_for(tmp_path: Path) -> None:
    lib_store = LibraryStore(LocalArtifactStore(tmp_path / "store"))
    ref, _, _ = put(lib_store, verified(tmp_path, "1", ["a"]))
    lib_store.activate("test-lib", ref)
    pointer_file = tmp_path / "store" / "modellibraries" / "test-lib" / "active.json"
    pointer_file.write_text(pointer_file.read_text().replace('"1"', '"9"'))
    started = time.monotonic()
    with pytest.raises(LibraryError) as err:
        lib_store.read_pointer("test-lib")
    assert err.value.reason == LibraryReason.CHECKSUM_MISMATCH
    assert time.monotonic() - started < 5
    assert LibraryStore(LocalArtifactStore(tmp_path / "empty")).read_pointer("test-lib") is None


def test_only_the_owner_withdraws_whatever_version_it_activated(tmp_path: Path) -> None:
    lib_store = LibraryStore(LocalArtifactStore(tmp_path / "store"))
    ref, _, _ = put(lib_store, verified(tmp_path, "1", ["a"]))
    lib_store.activate("test-lib", ref, owner="ns/a")
    # Another ModelLibrary with the same version turning inactive leaves ns/a's activation alone.
    kept = lib_store.withdraw("test-lib", "1", owner="ns/b")
    assert kept is not None and kept.active is not None and kept.active.owner == "ns/a"
    # ns/a withdraws even when its spec moved to another version at the same time.
    gone = lib_store.withdraw("test-lib", "2", owner="ns/a")
    assert gone is not None and gone.active is None and gone.previous is not None
    assert gone.previous.version == "1"


def test_the_same_library_in_another_form_is_the_same_version(tmp_path: Path) -> None:
    """The JSON document and the .tar.gz `pack` makes of it differ in bytes, not in content."""
    from foresight.cli import main as cli_main

    lib_store = LibraryStore(LocalArtifactStore(tmp_path / "store"))
    doc = write_document(tmp_path / "lib.json", [case("a"), case("b")], version="1")
    assert cli_main(["library", "pack", str(doc), "-o", str(tmp_path / "lib.tar.gz")]) == 0
    as_json = verify_path(doc, Path(tempfile.mkdtemp(dir=tmp_path)))
    as_tar = verify_path(tmp_path / "lib.tar.gz", Path(tempfile.mkdtemp(dir=tmp_path)))
    assert as_json.checksum != as_tar.checksum
    ref, _, written = put(lib_store, as_json)
    again, _, written_again = put(lib_store, as_tar)
    assert written and not written_again and again.manifest_sha256 == ref.manifest_sha256
    # Other content under the same version is still refused.
    changed = write_document(tmp_path / "changed.json", [case("a"), case("c")], version="1")
    with pytest.raises(LibraryError) as err:
        put(lib_store, verify_path(changed, Path(tempfile.mkdtemp(dir=tmp_path))))
    assert err.value.reason == LibraryReason.VERSION_CONFLICT
