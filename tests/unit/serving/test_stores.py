"""The in-process LRU and the sqlite store (threads, hit counts, counters by day, migration, errors)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from foresight.serving.classifier.accounting import CallEvent, Ledger, RequestEvent
from foresight.serving.classifier.errors import StoreError
from foresight.serving.classifier.store.base import CachedResult, FeedbackRecord, LedgerBatch, RequestRecord
from foresight.serving.classifier.store.lru import LruCache
from foresight.serving.classifier.store.sqlite import SqliteStore
from foresight.serving.classifier.telemetry import ClassifierMetrics
from prometheus_client import CollectorRegistry


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


T1 = datetime(2026, 1, 1, 12, tzinfo=UTC).timestamp()
T2 = datetime(2026, 1, 2, 12, tzinfo=UTC).timestamp()


def _ledger(store: SqliteStore) -> Ledger:
    return Ledger(
        store,
        ClassifierMetrics(CollectorRegistry()),
        prices={"": 0.01},
        backends={"": "dashscope"},
        clock=lambda: T2,
        timezone="UTC",
        retention_days=365,
        start_thread=False,
    )


def _event(ts: float, endpoint: str, client: str, **kw: object) -> RequestEvent:
    return RequestEvent(ts, endpoint, int(kw.pop("status", 200)), "", 0.001, client_id=client, **kw)  # type: ignore[arg-type]


def _batch(day: str, client: str, sha: str) -> LedgerBatch:
    record = RequestRecord(0.0, day, "classify", client, 200, 1.0, request_id=sha, sha256=sha, outcome="miss")
    return LedgerBatch(records=[record], counters={(day, "", "requests"): 1.0})


def test_sqlite_store_results_stats_and_retention(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    ledger = _ledger(store)
    sha = "cd" * 32
    store.put(CachedResult(sha, "pets", 1.0, "dashscope", "2026-01-01T00:00:00+00:00"))
    store.put(CachedResult(sha, "foods", 0.2, "dashscope", "2026-01-01T00:00:01+00:00"))  # first answer wins
    ledger.add(_event(T1, "classify", "a", sha256=sha, key=sha, category="pets", outcome="miss"))
    ledger.add(CallEvent(T1, "", billed=True))
    ledger.add(_event(T2, "classify", "a", sha256=sha, key=sha, category="pets", outcome="hit"))
    ledger.add(_event(T2, "check-cache", "b", sha256=sha, key=sha, category="pets", outcome="hit"))
    ledger.add(_event(T2, "classify", "c", status=502, outcome="failed"))
    ledger.add(CallEvent(T2, "", billed=False))
    ledger.flush()
    got = store.get(sha)
    assert got is not None and (got.category, got.hit_count) == ("pets", 2)
    s = ledger.day_stats("2026-01-02")
    assert (s.requests, s.classify_requests, s.check_cache_requests, s.cache_hits, s.cache_misses) == (
        3,
        2,
        1,
        2,
        1,
    )
    assert (s.errors, s.unique_clients, s.llm_calls, s.llm_calls_billed, s.failures) == (1, 3, 1, 0, 1)
    assert s.totals["category:pets"] == 2
    assert ledger.day_stats("2026-01-01").llm_calls_billed == 1
    assert store.purge("2026-01-02") >= 1 and ledger.day_stats("2026-01-01").requests == 0
    assert ledger.day_stats("2026-01-02").requests == 3
    store.close()


def test_sqlite_store_is_safe_with_several_threads(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "t.db")
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(50):
                sha = f"{n:02d}{i:062d}"
                store.put(CachedResult(sha, "pets", 1.0, "onnx", "t"))
                store.write(_batch("2026-01-01", f"c{n}", sha))
        except BaseException as exc:  # collected: an exception in a thread would otherwise be lost
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert store.counters("2026-01-01") == {"": {"requests": 400.0}}
    assert store.unique_clients("2026-01-01") == 8
    store.close()
    assert SqliteStore(tmp_path / "t.db").counters("2026-01-01")[""]["requests"] == 400  # persisted


def test_an_old_sqlite_file_is_migrated_with_its_cache_and_day_counts(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript(
        """
        CREATE TABLE results (sha256 TEXT PRIMARY KEY, category TEXT NOT NULL, confidence REAL NOT NULL,
          backend TEXT NOT NULL, created_at TEXT NOT NULL, hit_count INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE request_log (id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, day TEXT NOT NULL,
          endpoint TEXT NOT NULL, client_id TEXT NOT NULL, status INTEGER NOT NULL, latency_ms REAL NOT NULL,
          sha256 TEXT, category TEXT, cached INTEGER NOT NULL, llm_called INTEGER NOT NULL,
          llm_failed INTEGER NOT NULL);
        CREATE INDEX request_log_day ON request_log(day);
        INSERT INTO results VALUES ('aa', 'pets', 1.0, 'dashscope', 't', 4);
        INSERT INTO request_log(ts, day, endpoint, client_id, status, latency_ms, sha256, category, cached,
          llm_called, llm_failed) VALUES
          (1, '2026-01-01', 'classify', 'a', 200, 1, 'aa', 'pets', 0, 1, 0),
          (2, '2026-01-01', 'classify', 'b', 200, 1, 'aa', 'pets', 1, 0, 0),
          (3, '2026-01-01', 'classify', 'c', 502, 1, 'bb', NULL, 0, 1, 1);
        """
    )
    old.close()
    store = SqliteStore(path)
    got = store.get("aa")
    assert got is not None and (got.category, got.hit_count, got.variant) == ("pets", 4, "")
    counts = store.counters("2026-01-01")[""]
    assert (counts["requests"], counts["cache_hits"], counts["cache_misses"], counts["failures"]) == (
        3,
        1,
        2,
        1,
    )
    assert counts["category:pets"] == 2 and store.unique_clients("2026-01-01") == 3
    store.close()
    assert SqliteStore(path).get("aa") is not None  # opening again migrates nothing twice


def _operations(store: SqliteStore) -> dict[str, Callable[[], object]]:
    sha = "ef" * 32
    feedback = FeedbackRecord("r1", 0.0, "2026-01-01", "", "pets", "pets", True)
    return {
        "get": lambda: store.get(sha),
        "put": lambda: store.put(CachedResult(sha, "pets", 1.0, "onnx", "t")),
        "write": lambda: store.write(_batch("2026-01-01", "a", sha)),
        "counters": lambda: store.counters("2026-01-01"),
        "unique_clients": lambda: store.unique_clients("2026-01-01"),
        "answered": lambda: store.answered("r1"),
        "add_feedback": lambda: store.add_feedback(feedback),
        "category_hours": lambda: store.category_hours("2026-01-01T00", "2026-01-01T23"),
        "claim_flight": lambda: store.claim_flight(sha, "me", 10.0),
        "flight": lambda: store.flight(sha),
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
    other.executescript(
        "DROP TABLE results; DROP TABLE request_log; DROP TABLE counters; DROP TABLE category_hours;"
        " DROP TABLE feedback; DROP TABLE flights;"
    )
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
        for name in ("put", "write", "purge", "add_feedback", "claim_flight"):
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


def test_an_answer_being_written_is_still_found_for_its_feedback(tmp_path: Path) -> None:
    # The writer takes the pending events and writes them outside the lock the serving side uses;
    # feedback arriving in that gap must still find the request (it is neither pending nor stored).
    store = SqliteStore(tmp_path / "s.db")
    ledger = _ledger(store)
    writing, release = threading.Event(), threading.Event()
    write = store.write

    def slow_write(batch: LedgerBatch) -> None:
        writing.set()
        release.wait(10)
        write(batch)

    store.write = slow_write  # type: ignore[method-assign]
    ledger.add(_event(T2, "classify", "c1", request_id="r1", category="pets"))
    flusher = threading.Thread(target=ledger.flush)
    flusher.start()
    try:
        assert writing.wait(10)
        found = ledger.pending_request("r1")
        assert found is not None and found.category == "pets"
    finally:
        release.set()
        flusher.join(10)
    assert ledger.pending_request("r1") is None and store.answered("r1") is not None
