"""The embedded store: one SQLite file (on a PVC in a cluster), WAL mode, one connection per thread.

Every ``sqlite3.Error`` (a locked, read-only, full or damaged database) leaves this module as a
:class:`~foresight.serving.classifier.errors.StoreError`, which the HTTP layer answers with its
documented 503; the original error stays attached as ``__cause__``.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from ..errors import StoreError
from .base import CachedResult, DayStats, RequestRecord, ResultStore

__all__ = ["SqliteStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
  sha256 TEXT PRIMARY KEY, category TEXT NOT NULL, confidence REAL NOT NULL, backend TEXT NOT NULL,
  created_at TEXT NOT NULL, hit_count INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS request_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, day TEXT NOT NULL, endpoint TEXT NOT NULL,
  client_id TEXT NOT NULL, status INTEGER NOT NULL, latency_ms REAL NOT NULL, sha256 TEXT, category TEXT,
  cached INTEGER NOT NULL, llm_called INTEGER NOT NULL, llm_failed INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS request_log_day ON request_log(day);
"""


class SqliteStore(ResultStore):
    """``timeout``: seconds a statement waits for another connection's write lock before failing."""

    def __init__(self, path: str | Path, *, timeout: float = 30.0) -> None:
        self.path = str(path)
        self.timeout = timeout
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        conn = self._conn()
        try:
            with conn:
                conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise self._fail("create its tables", exc) from exc

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

    def get(self, sha256: str) -> CachedResult | None:
        conn = self._conn()
        try:
            row = conn.execute(
                "SELECT sha256, category, confidence, backend, created_at, hit_count FROM results"
                " WHERE sha256=?",
                (sha256,),
            ).fetchone()
        except sqlite3.Error as exc:
            raise self._fail("read a result", exc) from exc
        return CachedResult(*row) if row else None

    def put(self, result: CachedResult) -> None:
        conn = self._conn()
        try:
            with conn:
                conn.execute(
                    "INSERT OR IGNORE INTO results(sha256, category, confidence, backend, created_at,"
                    " hit_count) VALUES (?,?,?,?,?,?)",
                    (
                        result.sha256,
                        result.category,
                        result.confidence,
                        result.backend,
                        result.created_at,
                        result.hit_count,
                    ),
                )
        except sqlite3.Error as exc:
            raise self._fail("store a result", exc) from exc

    def record(self, records: Sequence[RequestRecord]) -> None:
        if not records:
            return
        conn = self._conn()
        try:
            with conn:
                conn.executemany(
                    "INSERT INTO request_log(ts, day, endpoint, client_id, status, latency_ms, sha256,"
                    " category, cached, llm_called, llm_failed) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    [
                        (
                            r.ts,
                            r.day,
                            r.endpoint,
                            r.client_id,
                            r.status,
                            r.latency_ms,
                            r.sha256,
                            r.category,
                            int(r.cached),
                            int(r.llm_called),
                            int(r.llm_failed),
                        )
                        for r in records
                    ],
                )
                conn.executemany(
                    "UPDATE results SET hit_count = hit_count + 1 WHERE sha256=?",
                    [(r.sha256,) for r in records if r.cached and r.sha256],
                )
        except sqlite3.Error as exc:
            raise self._fail("record requests", exc) from exc

    def day_stats(self, day: str) -> DayStats:
        conn = self._conn()
        try:
            row = conn.execute(
                "SELECT COUNT(*), SUM(endpoint='classify'), SUM(endpoint='check-cache'), SUM(cached),"
                " SUM(endpoint='classify' AND llm_called),"
                " SUM(status >= 400), COUNT(DISTINCT client_id), SUM(llm_called), SUM(llm_failed)"
                " FROM request_log WHERE day=?",
                (day,),
            ).fetchone()
            cats = dict(
                conn.execute(
                    "SELECT category, COUNT(*) FROM request_log WHERE day=? AND category IS NOT NULL"
                    " GROUP BY category",
                    (day,),
                ).fetchall()
            )
        except sqlite3.Error as exc:
            raise self._fail("read statistics", exc) from exc
        n = [int(v or 0) for v in row]
        return DayStats(
            day=day,
            requests=n[0],
            classify_requests=n[1],
            check_cache_requests=n[2],
            cache_hits=n[3],
            cache_misses=n[4],
            errors=n[5],
            unique_clients=n[6],
            llm_calls=n[7],
            llm_failures=n[8],
            categories=cats,
        )

    def hit_count(self, sha256: str) -> int:
        result = self.get(sha256)
        return result.hit_count if result else 0

    def purge(self, before_day: str) -> int:
        conn = self._conn()
        try:
            with conn:
                return conn.execute("DELETE FROM request_log WHERE day < ?", (before_day,)).rowcount
        except sqlite3.Error as exc:
            raise self._fail("purge old request-log entries", exc) from exc

    def ping(self) -> None:
        # Reads the schema page: a file that is gone, replaced or damaged fails here, cheaply.
        conn = self._conn()
        try:
            conn.execute("SELECT 1 FROM results LIMIT 1").fetchall()
        except sqlite3.Error as exc:
            raise self._fail("read its tables", exc) from exc

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
