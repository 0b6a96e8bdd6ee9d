"""The in-process LRU and the sqlite store (threads, hit counts, stats by day, retention, errors)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from foresight.serving.classifier.errors import StoreError
from foresight.serving.classifier.store.base import CachedResult, RequestRecord
from foresight.serving.classifier.store.lru import LruCache
from foresight.serving.classifier.store.sqlite import SqliteStore


def test_lru_evicts_least_recently_used_and_stays_bounded() -> None:
    lru: LruCache[int] = LruCache(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1  # a is now the most recent
    lru.put("c", 3)
    assert "b" not in lru and lru.get("a") == 1 and lru.get("c") == 3 and len(lru) == 2
    off: LruCache[int] = LruCache(0)
    off.put("a", 1)
    assert off.get("a") is None


def _rec(day: str, endpoint: str, client: str, **kw: object) -> RequestRecord:
    return RequestRecord(
        ts=0.0,
        day=day,
        endpoint=endpoint,
        client_id=client,
        status=int(kw.pop("status", 200)),
        latency_ms=1.0,
        **kw,
    )  # type: ignore[arg-type]


def test_sqlite_store_results_stats_and_retention(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    sha = "cd" * 32
    store.put(CachedResult(sha, "pets", 1.0, "dashscope", "2026-01-01T00:00:00+00:00"))
    store.put(CachedResult(sha, "foods", 0.2, "dashscope", "2026-01-01T00:00:01+00:00"))  # first answer wins
    store.record(
        [
            _rec("2026-01-01", "classify", "a", sha256=sha, category="pets", llm_called=True),
            _rec("2026-01-02", "classify", "a", sha256=sha, category="pets", cached=True),
            _rec("2026-01-02", "check-cache", "b", sha256=sha, category="pets", cached=True),
            _rec("2026-01-02", "classify", "c", status=502, llm_called=True, llm_failed=True),
        ]
    )
    got = store.get(sha)
    assert got is not None and (got.category, got.hit_count) == ("pets", 2)
    s = store.day_stats("2026-01-02")
    assert (s.requests, s.classify_requests, s.check_cache_requests, s.cache_hits, s.cache_misses) == (
        3,
        2,
        1,
        2,
        1,
    )
    assert (s.errors, s.unique_clients, s.llm_calls, s.llm_failures, s.categories) == (
        1,
        3,
        1,
        1,
        {"pets": 2},
    )
    assert store.purge("2026-01-02") == 1 and store.day_stats("2026-01-01").requests == 0
    store.close()


def test_sqlite_store_is_safe_with_several_threads(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "t.db")
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(50):
                store.put(CachedResult(f"{n:02d}{i:062d}", "pets", 1.0, "onnx", "t"))
                store.record(
                    [_rec("2026-01-01", "classify", f"c{n}", sha256=f"{n:02d}{i:062d}", category="pets")]
                )
        except BaseException as exc:  # collected: an exception in a thread would otherwise be lost
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    s = store.day_stats("2026-01-01")
    assert s.requests == 400 and s.unique_clients == 8
    store.close()
    assert SqliteStore(tmp_path / "t.db").day_stats("2026-01-01").requests == 400  # persisted


def _operations(store: SqliteStore) -> dict[str, Callable[[], object]]:
    sha = "ef" * 32
    return {
        "get": lambda: store.get(sha),
        "put": lambda: store.put(CachedResult(sha, "pets", 1.0, "onnx", "t")),
        "record": lambda: store.record([_rec("2026-01-01", "classify", "a", sha256=sha, cached=True)]),
        "day_stats": lambda: store.day_stats("2026-01-01"),
        "purge": lambda: store.purge("2026-01-01"),
        "ping": store.ping,
    }


def test_sqlite_errors_of_a_broken_database_are_store_errors(tmp_path: Path) -> None:
    path = tmp_path / "broken.db"
    store = SqliteStore(path)
    for op in _operations(store).values():
        op()  # all fine while the database is whole
    # Another process damages the database under the running store: its tables are gone.
    other = sqlite3.connect(path)
    other.executescript("DROP TABLE results; DROP TABLE request_log;")
    other.close()
    for name, op in _operations(store).items():
        with pytest.raises(StoreError) as err:
            op()
        assert isinstance(err.value.__cause__, sqlite3.Error), name
        assert err.value.status == 503 and err.value.code == "store_unavailable"
        assert str(path) in err.value.message and "no such table" in err.value.message, name
        assert "check that its volume is mounted, writable and not full" in err.value.message
    store.close()


def test_a_write_on_a_locked_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    store = SqliteStore(path, timeout=0.05)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
    try:
        ops = _operations(store)
        for name in ("put", "record", "purge"):
            with pytest.raises(StoreError, match="database is locked") as err:
                ops[name]()
            assert isinstance(err.value.__cause__, sqlite3.OperationalError), name
        assert store.get("ef" * 32) is None  # WAL readers are not blocked by a writer
    finally:
        other.execute("ROLLBACK")
        other.close()
    ops["put"]()  # the lock is gone: writes work again
    assert store.get("ef" * 32) is not None
    store.close()
