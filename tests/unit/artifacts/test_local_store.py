"""The local-directory artifact store: checksums, atomic writes under simulated crashes, model dirs."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest
from foresight.artifacts import (
    MANIFEST_NAME,
    ArtifactNotFoundError,
    ChecksumMismatchError,
    IncompleteDirectoryError,
    InvalidKeyError,
    LocalArtifactStore,
    UnsupportedURIError,
    open_object,
    open_store,
)
from foresight.artifacts import local as local_mod


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "store")


class Crash(BaseException):
    """Stands in for the process dying at a given point of a write."""


def test_round_trip_with_sha256_sidecar_in_sha256sum_format(
    store: LocalArtifactStore, tmp_path: Path
) -> None:
    data = os.urandom(5000)
    info = store.put_bytes(data, "lstm/v1/model.pt")

    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.size == 5000
    assert info.uri == (store.root / "lstm/v1/model.pt").as_uri()
    sidecar = store.root / "lstm/v1/model.pt.sha256"
    assert sidecar.read_text() == f"{info.sha256}  model.pt\n"
    assert store.get_bytes("lstm/v1/model.pt", expected_sha256=info.sha256) == data
    assert store.stat("lstm/v1/model.pt") == info

    src = tmp_path / "w.bin"
    src.write_bytes(b"file content")
    put = store.put_file(src, "w.bin")
    got = store.get_file("w.bin", tmp_path / "dl" / "w.bin", expected_sha256=put.sha256)
    assert (tmp_path / "dl" / "w.bin").read_bytes() == b"file content"
    assert got == put


def test_corrupted_content_and_wrong_expected_checksum_are_refused(
    store: LocalArtifactStore, tmp_path: Path
) -> None:
    info = store.put_bytes(b"good", "m.pt")
    with pytest.raises(ChecksumMismatchError) as caught:
        store.get_bytes("m.pt", expected_sha256="ab" * 32)
    assert caught.value.expected == "ab" * 32 and caught.value.actual == info.sha256

    (store.root / "m.pt").write_bytes(b"bad!")  # bit rot / tampering after the write
    with pytest.raises(ChecksumMismatchError):
        store.get_bytes("m.pt")
    dest = tmp_path / "m.pt"
    dest.write_bytes(b"previous")
    with pytest.raises(ChecksumMismatchError):
        store.get_file("m.pt", dest)
    assert dest.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "store") == ["m.pt"]


def test_crash_before_the_data_rename_leaves_no_object(
    store: LocalArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: object) -> None:
        raise Crash()

    monkeypatch.setattr(local_mod.os, "replace", crash)
    with pytest.raises(Crash):
        store.put_bytes(b"x" * 1000, "new/model.pt")
    monkeypatch.undo()

    assert not store.exists("new/model.pt")
    assert store.list() == []
    with pytest.raises(ArtifactNotFoundError):
        store.get_bytes("new/model.pt")


@pytest.mark.parametrize("crash_at", [1, 2, 3])
def test_an_overwrite_killed_at_any_rename_leaves_the_old_or_the_new_object_complete(
    store: LocalArtifactStore, monkeypatch: pytest.MonkeyPatch, crash_at: int
) -> None:
    """An overwrite makes three renames (sidecar listing both checksums, data, sidecar listing the
    new one); killed before any of them, the key still reads as one complete object, verified,
    never absent and never new bytes under the old checksum alone."""
    old, new = b"old model", b"new model, longer"
    store.put_bytes(old, "m/model.pt")
    real_replace = os.replace
    calls: list[str] = []

    def replace_or_crash(src: str, dst: str) -> None:
        calls.append(str(dst))
        if len(calls) == crash_at:
            raise Crash()
        real_replace(src, dst)

    monkeypatch.setattr(local_mod.os, "replace", replace_or_crash)
    with pytest.raises(Crash):
        store.put_bytes(new, "m/model.pt")
    monkeypatch.undo()

    content = store.get_bytes("m/model.pt")
    assert content == (old if crash_at <= 2 else new)  # the data rename is the second
    info = store.stat("m/model.pt")
    assert (info.sha256, info.size) == (hashlib.sha256(content).hexdigest(), len(content))
    assert [i.key for i in store.list("m/")] == ["m/model.pt"]
    assert not [p.name for p in (store.root / "m").iterdir() if p.name.startswith(local_mod.TMP_PREFIX)]
    # A retry of the write completes it, and the sidecar is one sha256sum line again.
    store.put_bytes(new, "m/model.pt")
    assert store.get_bytes("m/model.pt") == new
    sidecar = (store.root / "m/model.pt.sha256").read_text()
    assert sidecar == f"{hashlib.sha256(new).hexdigest()}  model.pt\n"


def test_readers_never_see_an_object_missing_or_mismatched_while_it_is_overwritten(
    store: LocalArtifactStore, tmp_path: Path
) -> None:
    """Two writers overwrite one key as fast as they can with contents of different sizes; readers
    (get_bytes, get_file, stat, list) always find it, and always one whole content, verified."""
    contents = [bytes([i]) * (1000 + 7919 * i) for i in range(4)]
    sums = {hashlib.sha256(c).hexdigest(): len(c) for c in contents}
    store.put_bytes(contents[0], "live/pointer.json")
    stop = threading.Event()
    errors: list[BaseException] = []
    reads: list[int] = []

    def writer(offset: int) -> None:
        try:
            for i in range(150):
                store.put_bytes(contents[(i + offset) % len(contents)], "live/pointer.json")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    def reader(n: int) -> None:
        dest = tmp_path / f"reader-{n}" / "copy"
        try:
            while not stop.is_set():
                assert store.get_bytes("live/pointer.json") in contents
                got = store.get_file("live/pointer.json", dest)
                assert dest.read_bytes() in contents and sums[got.sha256] == got.size
                info = store.stat("live/pointer.json")
                assert sums[info.sha256] == info.size
                assert [i.key for i in store.list("live/")] == ["live/pointer.json"]
                reads.append(n)
        except BaseException as exc:
            errors.append(exc)

    writers = [threading.Thread(target=writer, args=(k,)) for k in (0, 1)]
    readers = [threading.Thread(target=reader, args=(n,)) for n in range(3)]
    for t in writers + readers:
        t.start()
    for t in writers:
        t.join(timeout=120)
    stop.set()
    for t in readers:
        t.join(timeout=120)
    assert not errors, errors[:3]
    assert len(reads) > 20
    assert store.get_bytes("live/pointer.json") in contents
    assert (store.root / "live/pointer.json.sha256").read_text().count("\n") == 1


def test_damage_is_reported_at_once_not_taken_for_a_write(store: LocalArtifactStore) -> None:
    store.put_bytes(b"v1", "k")
    store.put_bytes(b"v2", "k")
    (store.root / "k").write_bytes(b"v3")  # changed in place, behind the store's back
    with pytest.raises(ChecksumMismatchError) as caught:
        store.get_bytes("k")
    assert caught.value.actual == hashlib.sha256(b"v3").hexdigest()


def test_crash_mid_copy_keeps_the_old_object_intact(
    store: LocalArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put_bytes(b"old", "k")

    def half_copy(src: object, dst: object) -> tuple[str, int]:
        dst.write(b"partial")  # type: ignore[attr-defined]
        raise Crash()

    monkeypatch.setattr(local_mod, "copy_hashing", half_copy)
    with pytest.raises(Crash):
        store.put_bytes(b"new content", "k")
    monkeypatch.undo()

    assert store.get_bytes("k") == b"old"
    assert sorted(p.name for p in store.root.iterdir()) == ["k", "k.sha256"]  # temp files cleaned


def test_leftovers_of_a_killed_writer_are_invisible(store: LocalArtifactStore) -> None:
    store.put_bytes(b"ok", "d/ok.bin")
    # What a SIGKILL mid-write leaves: a temp file, and data whose checksum never arrived.
    (store.root / "d" / f"{local_mod.TMP_PREFIX}abc-x.bin").write_bytes(b"part")
    (store.root / "d" / "orphan.bin").write_bytes(b"no checksum")

    assert [i.key for i in store.list()] == ["d/ok.bin"]
    assert not store.exists("d/orphan.bin")


def test_listing_by_prefix_and_delete(store: LocalArtifactStore) -> None:
    for key in ("a/v1/m.pt", "a/v2/m.pt", "ab/m.pt", "b/m.pt"):
        store.put_bytes(key.encode(), key)
    assert [i.key for i in store.list("a/")] == ["a/v1/m.pt", "a/v2/m.pt"]
    assert [i.key for i in store.list("a")] == ["a/v1/m.pt", "a/v2/m.pt", "ab/m.pt"]
    assert store.list("zzz/") == []
    store.delete("a/v1/m.pt")
    store.delete("a/v1/m.pt")  # idempotent, as in S3
    assert [i.key for i in store.list("a/")] == ["a/v2/m.pt"]
    assert not (store.root / "a/v1/m.pt.sha256").exists()


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "./a", "x.sha256", f"{local_mod.TMP_PREFIX}x"])
def test_keys_that_could_escape_the_root_or_collide_are_refused(store: LocalArtifactStore, key: str) -> None:
    with pytest.raises(InvalidKeyError):
        store.put_bytes(b"x", key)


def test_model_directory_round_trip_with_manifest(store: LocalArtifactStore, tmp_path: Path) -> None:
    src = tmp_path / "model"
    (src / "onnx").mkdir(parents=True)
    (src / "weights.pt").write_bytes(b"w" * 100)
    (src / "onnx" / "model.onnx").write_bytes(b"o" * 50)

    put = store.put_dir(src, "lstm/v3")
    manifest = store.read_manifest("lstm/v3")
    assert [(e["path"], e["size"]) for e in manifest] == [("onnx/model.onnx", 50), ("weights.pt", 100)]
    assert put.manifest.key == f"lstm/v3/{MANIFEST_NAME}"

    out = store.get_dir("lstm/v3", tmp_path / "copy")
    assert (tmp_path / "copy" / "onnx" / "model.onnx").read_bytes() == b"o" * 50
    assert sorted(f.key for f in out.files) == ["lstm/v3/onnx/model.onnx", "lstm/v3/weights.pt"]
    with pytest.raises(FileExistsError):
        store.get_dir("lstm/v3", tmp_path / "copy")


def test_directory_without_manifest_is_not_trusted(store: LocalArtifactStore, tmp_path: Path) -> None:
    store.put_bytes(b"w", "half/weights.pt")
    assert not store.has_dir("half")
    with pytest.raises(IncompleteDirectoryError) as caught:
        store.get_dir("half", tmp_path / "out")
    assert isinstance(caught.value, ArtifactNotFoundError)
    assert "MANIFEST.json" in str(caught.value)
    assert not (tmp_path / "out").exists()


def test_directory_file_corrupted_after_upload_fails_the_whole_download(
    store: LocalArtifactStore, tmp_path: Path
) -> None:
    src = tmp_path / "model"
    src.mkdir()
    (src / "a.bin").write_bytes(b"a")
    (src / "b.bin").write_bytes(b"b")
    store.put_dir(src, "m")
    (store.root / "m" / "b.bin").write_bytes(b"X")

    with pytest.raises(ChecksumMismatchError):
        store.get_dir("m", tmp_path / "out")
    assert not (tmp_path / "out").exists(), "a half-downloaded model directory must not appear"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_reupload_drops_the_old_manifest_first(
    store: LocalArtifactStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "model"
    src.mkdir()
    (src / "w.pt").write_bytes(b"v1")
    store.put_dir(src, "m")
    (src / "w.pt").write_bytes(b"v2")

    real_put_file = store.put_file

    def crash_after_files(path: str | os.PathLike[str], key: str):  # type: ignore[no-untyped-def]
        real_put_file(path, key)
        raise Crash()

    monkeypatch.setattr(store, "put_file", crash_after_files)
    with pytest.raises(Crash):
        store.put_dir(src, "m")
    assert not store.has_dir("m"), "old manifest + new files must not look like a complete model"


def test_open_store_and_open_object_pick_the_local_backend(tmp_path: Path) -> None:
    by_uri = open_store((tmp_path / "s").as_uri())
    by_path = open_store(str(tmp_path / "s"))
    assert isinstance(by_uri, LocalArtifactStore) and isinstance(by_path, LocalArtifactStore)
    info = by_uri.put_bytes(b"x", "v1/model.onnx")
    parent, key = open_object(info.uri)
    assert key == "model.onnx"
    assert parent.get_bytes(key) == b"x"
    assert by_path.get_bytes("v1/model.onnx") == b"x"

    for uri in ("gs://bucket/x", "http://host/x", "file://otherhost/x"):
        with pytest.raises(UnsupportedURIError):
            open_store(uri)
