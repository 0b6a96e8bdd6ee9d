"""The shard plan: stable assignment of series to shards, and the plan's round trip through a store."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest
from foresight.artifacts import LocalArtifactStore
from foresight.artifacts.errors import ChecksumMismatchError, IncompleteDirectoryError
from foresight.forecast.shard_plan import (
    HASH_SCHEME,
    PlannedSeries,
    SeriesListing,
    jump_hash,
    load_plan,
    load_shard,
    make_plan,
    parse_shard_index,
    plan_prefix,
    save_plan,
    series_hash,
    shard_of,
)


def keys(n: int, start: int = 0) -> list[dict[str, str]]:
    return [{"user": f"user-{i}", "cluster": "ab"[i % 2]} for i in range(start, start + n)]


def test_hash_ignores_label_order_and_empty_values() -> None:
    a = series_hash({"user": "alice", "cluster": "a"})
    assert a == series_hash({"cluster": "a", "user": "alice"})
    assert a == series_hash({"cluster": "a", "user": "alice", "group": ""})  # "" = absent in Prometheus
    assert a != series_hash({"cluster": "a", "user": "alicE"})
    # Pairs are encoded unambiguously: moving a character across the name/value boundary changes it.
    assert series_hash({"ab": "c"}) != series_hash({"a": "bc"})


def test_assignment_is_the_same_in_another_process() -> None:
    # Python's hash() is salted per process; the plan must not depend on it.
    sample = [{"user": 'o"brien', "cluster": "a"}, {"user": "张三"}, {"user": "x", "g": "back\\slash"}]
    here = [shard_of(k, 7) for k in sample]
    code = (
        "import json,sys; from foresight.forecast.shard_plan import shard_of; "
        "print(json.dumps([shard_of(k, 7) for k in json.loads(sys.argv[1])]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(sample)],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PYTHONPATH": ":".join(sys.path)},
    )
    assert json.loads(out.stdout) == here


def test_known_values_pin_the_scheme() -> None:
    # If these change, every running task's series would move shards: bump HASH_SCHEME instead.
    assert HASH_SCHEME == "sha256-jump-v1"
    assert series_hash({"user": "alice"}) == int.from_bytes(
        __import__("hashlib").sha256(b'[["user","alice"]]').digest()[:8], "big"
    )
    # Test vectors of the reference C++ implementation (as published with github.com/dgryski/go-jump).
    vectors = {
        0: [0] * 20,
        1: [0, 0, 0, 0, 0, 0, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 17, 17],
        0xDEADBEEF: [0, 1, 2, 3, 3, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 16, 16, 16],
        0x0DDC0FFEEBADF00D: [0, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 15, 15, 15, 15],
    }
    for key, buckets in vectors.items():
        assert [jump_hash(key, n) for n in range(1, len(buckets) + 1)] == buckets


def test_a_series_stays_on_its_shard_as_the_set_grows() -> None:
    before = {json.dumps(k): shard_of(k, 4) for k in keys(500)}
    grown = keys(2000)  # the 500 plus 1,500 new series
    plan = make_plan(listing(grown), run_id="r2", parallelism=4, query="q", group_by=["user", "cluster"],
                     aggregate="sum", created_at=0)  # fmt: skip
    placed = {json.dumps(p.labels): i for i, shard in enumerate(plan.shards) for p in shard}
    assert all(placed[k] == shard for k, shard in before.items())


def test_changing_parallelism_moves_few_series() -> None:
    sample = keys(20_000)
    for n in (2, 3, 4, 8):
        moved = sum(shard_of(k, n) != shard_of(k, n + 1) for k in sample) / len(sample)
        # Jump hashing moves 1/(n+1) of the series (all into the new shard); modulo would move n/(n+1).
        assert moved == pytest.approx(1 / (n + 1), abs=0.02)
        assert all(shard_of(k, n + 1) in (shard_of(k, n), n) for k in sample[:2000])


@pytest.mark.parametrize("parallelism", [2, 3, 5, 16])
def test_shards_are_balanced(parallelism: int) -> None:
    n = 30_000
    counts = Counter(shard_of(k, parallelism) for k in keys(n))
    assert sorted(counts) == list(range(parallelism))
    expected = n / parallelism
    # Binomial spread: 5 standard deviations around the expected share.
    sd = (n * (1 / parallelism) * (1 - 1 / parallelism)) ** 0.5
    assert all(abs(c - expected) < 5 * sd for c in counts.values())


def test_jump_hash_rejects_no_buckets() -> None:
    with pytest.raises(ValueError, match="buckets"):
        jump_hash(1, 0)


def listing(ks: list[dict[str, str]]) -> SeriesListing:
    return SeriesListing(
        [PlannedSeries(k, 1 + i % 3) for i, k in enumerate(ks)], "series-api", 1, 0.01, 3600, 7200, 3600
    )


def test_plan_round_trip_through_the_local_store(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = LocalArtifactStore(tmp_path)
    ks = [*keys(300), {"user": 'o"brien', "cluster": "a"}, {"user": "张三", "cluster": ""}]
    plan = make_plan(listing(ks), run_id="run-1", parallelism=3, query='sum by (user, cluster) (x{a="b"})',
                     group_by=["user", "cluster"], aggregate="sum", created_at=1_700_000_000)  # fmt: skip
    prefix = save_plan(store, "forecasttasks/ns/task", plan)
    assert prefix == "forecasttasks/ns/task/plans/run-1"
    assert json.loads(store.get_bytes("forecasttasks/ns/task/plans/latest.json"))["prefix"] == prefix

    header = load_plan(store, prefix)
    assert header["parallelism"] == 3 and header["runId"] == "run-1" and header["hash"] == HASH_SCHEME
    assert header["createdAt"] == "2023-11-14T22:13:20Z"
    assert header["totals"]["series"] == len(ks)
    assert [s["series"] for s in header["totals"]["shards"]] == [len(s) for s in plan.shards]
    assert header["source"]["groupBy"] == ["user", "cluster"]

    union = []
    for i in range(3):
        part = load_shard(store, prefix, i)
        assert part.index == i and part.parallelism == 3 and part.start == 3600 and part.step == 3600
        assert part.series == plan.shards[i]
        assert all(shard_of(p.labels, 3) == i for p in part.series)
        union += part.series
    assert sorted(json.dumps(p.labels, sort_keys=True) for p in union) == sorted(
        json.dumps(k, sort_keys=True) for k in ks
    )


def test_a_shard_refuses_an_incomplete_or_tampered_plan(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = LocalArtifactStore(tmp_path)
    plan = make_plan(listing(keys(50)), run_id="r", parallelism=2, query="q", group_by=["user"],
                     aggregate="sum", created_at=0)  # fmt: skip
    prefix = save_plan(store, "t", plan)
    with pytest.raises(ValueError, match="outside the plan's 2 shards"):
        load_shard(store, prefix, 2)
    # A shard file rewritten after the manifest: the checksum catches it.
    store.put_bytes(b'{"format":1,"runId":"r","index":1,"series":[]}', f"{prefix}/shard-00001.json")
    with pytest.raises(ChecksumMismatchError):
        load_shard(store, prefix, 1)
    store.delete(f"{prefix}/MANIFEST.json")  # as while a plan is being written
    with pytest.raises(IncompleteDirectoryError):
        load_shard(store, prefix, 0)


def test_shard_index_from_the_indexed_job() -> None:
    assert parse_shard_index("2", 3) == 2
    with pytest.raises(ValueError, match="Indexed Job"):
        parse_shard_index(None, 3)
    with pytest.raises(ValueError, match="outside"):
        parse_shard_index("3", 3)
    with pytest.raises(ValueError, match="without '/'"):
        plan_prefix("t", "../x")
