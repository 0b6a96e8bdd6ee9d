"""The embedded store: one SQLite file (on a PVC in a cluster), WAL mode, one connection per thread.

Several worker processes of one pod share the file: WAL lets readers run beside the one writer,
and ``timeout`` makes a writer wait for another's lock instead of failing. Every ``sqlite3.Error``
(a locked, read-only, full or damaged database) leaves this module as a
:class:`~foresight.serving.classifier.errors.StoreError`, which the HTTP layer answers with its
documented 503; the original error stays attached as ``__cause__``.

A file written before variants existed (``results`` keyed by ``sha256``, a request log with
``cached`` / ``llm_called`` flags) is migrated when opened: its results stay cache hits of the
unnamed variant, its request log and day counters are carried over.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import StoreError
from .base import (
    Answered,
    CachedResult,
    FeedbackRecord,
    FlightState,
    LedgerBatch,
    ResultStore,
    counters_of,
)

__all__ = ["SqliteStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
  key TEXT PRIMARY KEY, sha256 TEXT NOT NULL, variant TEXT NOT NULL, category TEXT NOT NULL,
  confidence REAL NOT NULL, backend TEXT NOT NULL, created_at TEXT NOT NULL,
  hit_count INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS request_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, day TEXT NOT NULL, request_id TEXT NOT NULL,
  endpoint TEXT NOT NULL, variant TEXT NOT NULL, client_id TEXT NOT NULL, status INTEGER NOT NULL,
  latency_ms REAL NOT NULL, sha256 TEXT, category TEXT, outcome TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS request_log_day ON request_log(day);
CREATE INDEX IF NOT EXISTS request_log_request_id ON request_log(request_id);
CREATE TABLE IF NOT EXISTS counters (
  day TEXT NOT NULL, variant TEXT NOT NULL, name TEXT NOT NULL, value REAL NOT NULL,
  PRIMARY KEY (day, variant, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS category_hours (
  hour TEXT NOT NULL, variant TEXT NOT NULL, category TEXT NOT NULL, n INTEGER NOT NULL,
  PRIMARY KEY (hour, variant, category)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS feedback (
  request_id TEXT PRIMARY KEY, ts REAL NOT NULL, day TEXT NOT NULL, variant TEXT NOT NULL,
  category TEXT NOT NULL, label TEXT NOT NULL, correct INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS feedback_day ON feedback(day);
CREATE TABLE IF NOT EXISTS flights (
  key TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL NOT NULL, outcome TEXT);
"""

# The first schema's tables, renamed aside and copied over once (see the module docstring).
_MIGRATE = """
ALTER TABLE results RENAME TO results_v1;
ALTER TABLE request_log RENAME TO request_log_v1;
DROP INDEX IF EXISTS request_log_day;
"""
_COPY_V1 = """
INSERT OR IGNORE INTO results(key, sha256, variant, category, confidence, backend, created_at, hit_count)
  SELECT sha256, sha256, '', category, confidence, backend, created_at, hit_count FROM results_v1;
INSERT INTO request_log(ts, day, request_id, endpoint, variant, client_id, status, latency_ms, sha256,
                        category, outcome)
  SELECT ts, day, '', endpoint, '', client_id, status, latency_ms, sha256, category,
    CASE WHEN cached THEN 'hit' WHEN llm_failed THEN 'failed' WHEN llm_called THEN 'miss'
         WHEN status >= 400 THEN 'rejected' WHEN endpoint = 'check-cache' THEN 'not_found' ELSE 'miss' END
  FROM request_log_v1;
INSERT OR IGNORE INTO counters(day, variant, name, value)
  SELECT day, '', 'requests', COUNT(*) FROM request_log_v1
    GROUP BY day
  UNION ALL SELECT day, '', 'classify_requests', SUM(endpoint = 'classify') FROM request_log_v1
    GROUP BY day
  UNION ALL SELECT day, '', 'check_cache_requests', SUM(endpoint = 'check-cache') FROM request_log_v1
    GROUP BY day
  UNION ALL SELECT day, '', 'cache_hits', SUM(cached) FROM request_log_v1
    GROUP BY day
  UNION ALL SELECT day, '', 'cache_misses', SUM(endpoint = 'classify' AND llm_called) FROM request_log_v1
    GROUP BY day
  UNION ALL SELECT day, '', 'errors', SUM(status >= 400) FROM request_log_v1
    GROUP BY day
  UNION ALL SELECT day, '', 'llm_calls', SUM(llm_called) FROM request_log_v1
    GROUP BY day
  UNION ALL SELECT day, '', 'failures', SUM(llm_failed) FROM request_log_v1
    GROUP BY day
  UNION ALL SELECT day, '', 'category:' || category, COUNT(*) FROM request_log_v1
    WHERE category IS NOT NULL GROUP BY day, category;
DROP TABLE results_v1;
DROP TABLE request_log_v1;
"""
_COLUMNS = "sha256, category, confidence, backend, created_at, hit_count, variant"


def _result(row: Sequence[Any] | None) -> CachedResult | None:
    if row is None:
        return None
    sha, category, confidence, backend, created_at, hits, variant = row
    return CachedResult(sha, category, float(confidence), backend, created_at, int(hits), variant)


class SqliteStore(ResultStore):
    """``timeout``: seconds a statement waits for another connection's write lock before failing."""

    def __init__(self, path: str | Path, *, timeout: float = 30.0) -> None:
        self.path = str(path)
        self.timeout = timeout
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        try:
            self._create_tables(self._conn())
        except sqlite3.Error as exc:
            raise self._fail("create its tables", exc) from exc

    @staticmethod
    def _create_tables(conn: sqlite3.Connection) -> None:
        # One IMMEDIATE transaction: of several worker processes starting at once, one creates (or
        # migrates) and the others wait, then find the tables there. executescript() would commit
        # between the steps, so the statements run one by one.
        conn.isolation_level = None
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                columns = {row[1] for row in conn.execute("PRAGMA table_info(results)")}
                migrate = bool(columns) and "key" not in columns
                script = (_MIGRATE if migrate else "") + _SCHEMA + (_COPY_V1 if migrate else "")
                for statement in script.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            conn.isolation_level = "DEFERRED"  # the default: `with conn` opens a transaction

    def _fail(self, what: str, exc: sqlite3.Error) -> StoreError:
        return StoreError(
            f"sqlite store {self.path} failed to {what}: {type(exc).__name__}: {exc}; check that its "
            "volume is mounted, writable and not full, and that no other process holds the file locked "
            "(a damaged file must be moved away: the service recreates it empty on restart)"
        )

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=self.timeout, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                # NORMAL in WAL mode loses at most the last commits on power loss, never corrupts.
                conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as exc:
                raise StoreError(
                    f"cannot open the sqlite store {self.path}: {exc}; check the volume is "
                    "mounted and writable"
                ) from exc
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _read(self, what: str, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._fail(what, exc) from exc

    def get(self, key: str) -> CachedResult | None:
        rows = self._read("read a result", f"SELECT {_COLUMNS} FROM results WHERE key=?", (key,))
        return _result(rows[0] if rows else None)

    def put(self, result: CachedResult) -> None:
        conn = self._conn()
        try:
            with conn:
                conn.execute(
                    "INSERT OR IGNORE INTO results(key, sha256, variant, category, confidence, backend,"
                    " created_at, hit_count) VALUES (?,?,?,?,?,?,?,?)",
                    (
                        result.key,
                        result.sha256,
                        result.variant,
                        result.category,
                        result.confidence,
                        result.backend,
                        result.created_at,
                        result.hit_count,
                    ),
                )
        except sqlite3.Error as exc:
            raise self._fail("store a result", exc) from exc

    def write(self, batch: LedgerBatch) -> None:
        if not batch:
            return
        conn = self._conn()
        try:
            with conn:
                conn.executemany(
                    # The columns in RequestRecord's field order: its tuples go in as they are.
                    "INSERT INTO request_log(ts, day, endpoint, client_id, status, latency_ms, request_id,"
                    " variant, sha256, category, outcome) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    batch.records,
                )
                conn.executemany(
                    "INSERT INTO counters(day, variant, name, value) VALUES (?,?,?,?)"
                    " ON CONFLICT(day, variant, name) DO UPDATE SET value = value + excluded.value",
                    [(*k, v) for k, v in batch.counters.items()],
                )
                conn.executemany(
                    "UPDATE results SET hit_count = hit_count + ? WHERE key=?",
                    [(n, k) for k, n in batch.hits.items()],
                )
                conn.executemany(
                    "INSERT INTO category_hours(hour, variant, category, n) VALUES (?,?,?,?)"
                    " ON CONFLICT(hour, variant, category) DO UPDATE SET n = n + excluded.n",
                    [(*k, n) for k, n in batch.category_hours.items()],
                )
        except sqlite3.Error as exc:
            raise self._fail("record requests", exc) from exc

    def counters(self, day: str) -> dict[str, dict[str, float]]:
        rows = self._read("read statistics", "SELECT variant, name, value FROM counters WHERE day=?", (day,))
        return counters_of(rows)

    def unique_clients(self, day: str) -> int:
        rows = self._read(
            "read statistics", "SELECT COUNT(DISTINCT client_id) FROM request_log WHERE day=?", (day,)
        )
        return int(rows[0][0] or 0)

    def answered(self, request_id: str) -> Answered | None:
        rows = self._read(
            "look a request up",
            "SELECT variant, category, day FROM request_log WHERE request_id=? AND status=200"
            " AND category IS NOT NULL LIMIT 1",
            (request_id,),
        )
        return Answered(request_id, *rows[0]) if rows else None

    def add_feedback(self, feedback: FeedbackRecord) -> tuple[FeedbackRecord, bool]:
        conn = self._conn()
        f = feedback
        try:
            with conn:
                recorded = conn.execute(
                    "INSERT OR IGNORE INTO feedback(request_id, ts, day, variant, category, label, correct)"
                    " VALUES (?,?,?,?,?,?,?)",
                    (f.request_id, f.ts, f.day, f.variant, f.category, f.label, int(f.correct)),
                ).rowcount
                if recorded:
                    conn.execute(
                        "INSERT INTO counters(day, variant, name, value) VALUES (?,?,?,1)"
                        " ON CONFLICT(day, variant, name) DO UPDATE SET value = value + 1",
                        (f.day, f.variant, "feedback_correct" if f.correct else "feedback_incorrect"),
                    )
                    return f, True
                row = conn.execute(
                    "SELECT ts, day, variant, category, label, correct FROM feedback WHERE request_id=?",
                    (f.request_id,),
                ).fetchone()
        except sqlite3.Error as exc:
            raise self._fail("record feedback", exc) from exc
        ts, day, variant, category, label, correct = row
        return FeedbackRecord(f.request_id, ts, day, variant, category, label, bool(correct)), False

    def category_hours(self, first_hour: str, last_hour: str) -> dict[tuple[str, str], int]:
        rows = self._read(
            "read category counts",
            "SELECT variant, category, SUM(n) FROM category_hours WHERE hour BETWEEN ? AND ?"
            " GROUP BY variant, category",
            (first_hour, last_hour),
        )
        return {(v, c): int(n) for v, c, n in rows}

    def claim_flight(self, key: str, owner: str, ttl: float) -> bool:
        now = time.time()
        conn = self._conn()
        try:
            with conn:
                conn.execute("DELETE FROM flights WHERE expires < ?", (now - 60,))
                return bool(
                    conn.execute(
                        "INSERT INTO flights(key, owner, expires, outcome) VALUES (?,?,?,NULL)"
                        " ON CONFLICT(key) DO UPDATE SET owner=excluded.owner, expires=excluded.expires,"
                        " outcome=NULL WHERE flights.expires < ?",
                        (key, owner, now + ttl, now),
                    ).rowcount
                )
        except sqlite3.Error as exc:
            raise self._fail("claim a backend call", exc) from exc

    def finish_flight(self, key: str, owner: str, outcome: Mapping[str, Any], keep: float) -> None:
        conn = self._conn()
        try:
            with conn:
                conn.execute(
                    "UPDATE flights SET outcome=?, expires=? WHERE key=? AND owner=?",
                    (json.dumps(dict(outcome)), time.time() + keep, key, owner),
                )
        except sqlite3.Error as exc:
            raise self._fail("finish a backend call", exc) from exc

    def flight(self, key: str) -> FlightState:
        result = self.get(key)
        if result is not None:
            return FlightState(result=result)
        rows = self._read("read a backend call", "SELECT expires, outcome FROM flights WHERE key=?", (key,))
        if not rows:
            return FlightState()
        expires, outcome = rows[0]
        if outcome is not None:
            return FlightState(outcome=json.loads(outcome))
        return FlightState(running=expires >= time.time())

    def purge(self, before_day: str) -> int:
        conn = self._conn()
        try:
            with conn:
                removed = conn.execute("DELETE FROM request_log WHERE day < ?", (before_day,)).rowcount
                removed += conn.execute("DELETE FROM counters WHERE day < ?", (before_day,)).rowcount
                removed += conn.execute("DELETE FROM feedback WHERE day < ?", (before_day,)).rowcount
                removed += conn.execute("DELETE FROM category_hours WHERE hour < ?", (before_day,)).rowcount
                return removed
        except sqlite3.Error as exc:
            raise self._fail("purge old request-log entries", exc) from exc

    def hit_count(self, key: str) -> int:
        result = self.get(key)
        return result.hit_count if result else 0

    def ping(self) -> None:
        # Reads the schema page: a file that is gone, replaced or damaged fails here, cheaply.
        self._read("read its tables", "SELECT 1 FROM results LIMIT 1")

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
