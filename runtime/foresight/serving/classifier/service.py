"""The classification logic behind the HTTP layer: cache lookup, one backend call per new image,
and the request log written in the background so the hot path never waits on the store.

Request-log retention is applied while the service runs, not only at start: the first request
of each new day (in the service's time zone) queues a purge on the request-log writer's thread.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import queue
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from foresight.contract.classifier import ClassifierConfig

from .backends.base import ClassifierBackend
from .errors import StoreError, UpstreamError
from .images import CheckedImage
from .store.base import CachedResult, DayStats, RequestRecord, ResultStore
from .store.lru import LruCache
from .telemetry import ClassifierMetrics

__all__ = ["PURGE_RETRY_SECONDS", "ClassifierService", "RequestLogWriter", "sha256_hex"]

log = logging.getLogger(__name__)

PURGE_RETRY_SECONDS = 3600.0
"""After a failed request-log purge, the next try waits this long (not one per request)."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class RequestLogWriter:
    """Batches request records into the store from one background thread; ``flush`` waits for it.

    ``call_soon`` runs other store maintenance (the retention purge) on the same thread, after the
    records queued before it are written.
    """

    def __init__(self, store: ResultStore, *, batch: int = 500) -> None:
        self._store = store
        self._batch = batch
        self._q: queue.Queue[RequestRecord | Callable[[], object] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="classifier-request-log", daemon=True)
        self._thread.start()

    def submit(self, record: RequestRecord) -> None:
        self._q.put(record)

    def call_soon(self, task: Callable[[], object]) -> None:
        self._q.put(task)

    def _run(self) -> None:
        while True:
            first = self._q.get()
            items = [first]
            while len(items) < self._batch:
                try:
                    items.append(self._q.get_nowait())
                except queue.Empty:
                    break
            records = [r for r in items if isinstance(r, RequestRecord)]
            tasks = [t for t in items if t is not None and not isinstance(t, RequestRecord)]
            try:
                self._store.record(records)
            except Exception:
                # Losing statistics must not take the service down; the error is visible in the log.
                log.exception("could not write %d request-log records", len(records))
            try:
                for task in tasks:
                    try:
                        task()
                    except Exception:  # same reason: maintenance failing must not stop the writer
                        log.exception("request-log maintenance task failed")
            finally:
                for _ in items:
                    self._q.task_done()
            if None in items:
                return

    def flush(self) -> None:
        self._q.join()

    def close(self) -> None:
        self._q.put(None)
        self._thread.join(timeout=10)


class ClassifierService:
    def __init__(
        self,
        config: ClassifierConfig,
        *,
        backend: ClassifierBackend,
        store: ResultStore,
        metrics: ClassifierMetrics,
        clock: Callable[[], float],
    ) -> None:
        self.config = config
        self.backend = backend
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self.tz = ZoneInfo(config.timezone)
        self.lru: LruCache[CachedResult] = LruCache(config.cache.lru_size)
        self.writer = RequestLogWriter(store)
        self._inflight: dict[str, threading.Lock] = {}
        self._inflight_lock = threading.Lock()
        # Retention state: the day the request log was last purged for (the cutoff only moves when
        # the day does), and when a failed purge may be tried again.
        self._retention_lock = threading.Lock()
        self._purged_day: str | None = None
        self._purge_retry_at = 0.0

    def today(self) -> str:
        return datetime.fromtimestamp(self.clock(), self.tz).date().isoformat()

    def lookup(self, sha256: str) -> CachedResult | None:
        hit = self.lru.get(sha256)
        if hit is None:
            hit = self.store.get(sha256)
            if hit is not None:
                self.lru.put(sha256, hit)
        return hit

    def classify(self, image: CheckedImage, sha256: str) -> tuple[CachedResult, bool]:
        """(result, cached). Identical images classified concurrently share one backend call."""
        hit = self.lookup(sha256)
        if hit is not None:
            return hit, True
        with self._inflight_lock:
            lock = self._inflight.setdefault(sha256, threading.Lock())
        with lock:
            try:
                hit = self.lookup(sha256)
                if hit is not None:
                    return hit, True
                self.metrics.backend_calls.labels(self.backend.name).inc()
                try:
                    res = self.backend.classify(image)
                except UpstreamError:
                    self.metrics.backend_failures.labels(self.backend.name).inc()
                    raise
                result = CachedResult(
                    sha256=sha256,
                    category=res.category,
                    confidence=res.confidence,
                    backend=self.backend.name,
                    created_at=datetime.fromtimestamp(self.clock(), UTC).isoformat(),
                )
                self.store.put(result)  # only successes reach this line: failures are never cached
                self.lru.put(sha256, result)
                return result, False
            finally:
                with self._inflight_lock:
                    self._inflight.pop(sha256, None)

    def record(self, record: RequestRecord) -> None:
        self.writer.submit(record)
        # Unlocked first test: on the common path (same day) this costs one string comparison;
        # _claim_purge checks again under the lock.
        if record.day != self._purged_day and self._claim_purge(record.day):
            self.writer.call_soon(functools.partial(self._purge_quietly, record.day))

    def day_stats(self, day: str | None = None) -> DayStats:
        self.writer.flush()
        return self.store.day_stats(day or self.today())

    def purge_old(self, day: str | None = None) -> int:
        """Drop the request-log days older than ``cache.retentionDays`` before ``day`` (default today).

        Raises StoreError; after a failure, :meth:`record` waits :data:`PURGE_RETRY_SECONDS` before
        it queues the next try.
        """
        day = day or self.today()
        cutoff = date.fromisoformat(day) - timedelta(days=self.config.cache.retention_days)
        try:
            removed = self.store.purge(cutoff.isoformat())
        except StoreError:
            with self._retention_lock:
                self._purged_day = None
                self._purge_retry_at = self.clock() + PURGE_RETRY_SECONDS
            raise
        with self._retention_lock:
            self._purged_day = day
        return removed

    def _claim_purge(self, day: str) -> bool:
        """Whether the caller should queue the purge for ``day`` (one caller per day wins)."""
        with self._retention_lock:
            if day == self._purged_day or self.clock() < self._purge_retry_at:
                return False
            self._purged_day = day  # claimed: concurrent requests of this day queue no second purge
            return True

    def _purge_quietly(self, day: str) -> None:
        try:
            removed = self.purge_old(day)
        except StoreError as exc:
            log.error("could not purge the request log (next try in %.0f s): %s", PURGE_RETRY_SECONDS, exc)
            return
        log.info(
            "purged %d request-log entries older than %d days", removed, self.config.cache.retention_days
        )

    def close(self) -> None:
        self.writer.close()
        self.backend.close()
        self.store.close()
