"""The classification logic behind the HTTP layer: cache lookup, one backend call per new image,
and the request log written in the background so the hot path never waits on the store.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from .backends.base import ClassifierBackend
from .config import ClassifierConfig
from .errors import UpstreamError
from .images import CheckedImage
from .metrics import ClassifierMetrics
from .store.base import CachedResult, DayStats, RequestRecord, ResultStore
from .store.lru import LruCache

__all__ = ["ClassifierService", "RequestLogWriter", "sha256_hex"]

log = logging.getLogger(__name__)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class RequestLogWriter:
    """Batches request records into the store from one background thread; ``flush`` waits for it."""

    def __init__(self, store: ResultStore, *, batch: int = 500) -> None:
        self._store = store
        self._batch = batch
        self._q: queue.Queue[RequestRecord | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="classifier-request-log", daemon=True)
        self._thread.start()

    def submit(self, record: RequestRecord) -> None:
        self._q.put(record)

    def _run(self) -> None:
        while True:
            first = self._q.get()
            items = [first]
            while len(items) < self._batch:
                try:
                    items.append(self._q.get_nowait())
                except queue.Empty:
                    break
            records = [r for r in items if r is not None]
            try:
                self._store.record(records)
            except Exception:
                # Losing statistics must not take the service down; the error is visible in the log.
                log.exception("could not write %d request-log records", len(records))
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

    def day_stats(self, day: str | None = None) -> DayStats:
        self.writer.flush()
        return self.store.day_stats(day or self.today())

    def purge_old(self) -> int:
        cutoff = datetime.fromtimestamp(self.clock(), self.tz).date() - timedelta(
            days=self.config.cache.retention_days
        )
        return self.store.purge(cutoff.isoformat())

    def close(self) -> None:
        self.writer.close()
        self.backend.close()
        self.store.close()
