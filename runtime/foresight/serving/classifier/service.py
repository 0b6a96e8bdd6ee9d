"""The classification logic behind the HTTP layer: the variants, the cache, one shared backend call
per new image, and the ledger that counts it all.

A request for an image is answered, in order, from the in-process LRU, from the store, or by the
variant's backend through a flight (:mod:`.flights`) that identical concurrent requests share.
Only real results are cached (:class:`~.backends.base.BackendResult.certain`); a low-confidence
answer is returned, counted and not cached, so the next request for the image asks again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio

from foresight.contract.classifier import ClassifierConfig

from .accounting import PURGE_RETRY_SECONDS, CallEvent, DayStats, Ledger
from .backends.base import ClassifierBackend
from .errors import StoreError
from .flights import Flights, SharedAnswer
from .images import CheckedImage, check_image
from .render import CacheEntry, fragment, result_fields
from .store.base import Answered, CachedResult, ResultStore, cache_key
from .store.lru import LruCache

__all__ = ["PURGE_RETRY_SECONDS", "ClassifierService", "Served", "Variant", "sha256_hex"]

log = logging.getLogger(__name__)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Variant:
    """One served variant: its name (``""`` outside experiments), backend and price per call."""

    name: str
    backend: ClassifierBackend[Any]
    price: float
    concurrency: int
    _limiter: anyio.CapacityLimiter | None = field(default=None, repr=False)

    def limiter(self) -> anyio.CapacityLimiter:
        """Caps this variant's concurrent backend calls at ``backend.concurrency``."""
        # Created on first use: a CapacityLimiter needs the running event loop.
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.concurrency)
        return self._limiter


@dataclass(frozen=True)
class Served:
    """An answer for a client: the result's rendered fields and how it was found."""

    fields: bytes
    category: str
    cached: bool
    certain: bool = True
    shared: bool = False


class ClassifierService:
    def __init__(
        self,
        config: ClassifierConfig,
        *,
        variants: Sequence[Variant],
        store: ResultStore,
        ledger: Ledger,
        flights: Flights,
        clock: Callable[[], float],
    ) -> None:
        self.config = config
        self.variants = {v.name: v for v in variants}
        self.control = variants[0]
        self.store = store
        self.ledger = ledger
        self.writer = ledger  # what tests and the stats route flush
        self.flights = flights
        self.clock = clock
        self.lru: LruCache[CacheEntry] = LruCache(config.cache.lru_size)

    @property
    def backend(self) -> ClassifierBackend[Any]:
        """The control's backend (the only one outside experiments)."""
        return self.control.backend

    def variant(self, name: str) -> Variant:
        return self.variants.get(name) or self.control

    def today(self) -> str:
        return self.ledger.day(self.clock())

    def entry(self, result: CachedResult) -> CacheEntry:
        fields = result_fields(self.config, result.category, result.confidence, result.sha256)
        return CacheEntry(result, fragment(fields))

    def lookup(self, key: str) -> CacheEntry | None:
        """The cached answer under ``key``: the LRU, then the store (blocking: run in a thread)."""
        hit = self.lru.get(key)
        if hit is None:
            result = self.store.get(key)
            if result is not None:
                hit = self.entry(result)
                self.lru.put(key, hit)
        return hit

    async def classify(self, variant: Variant, data: bytes, sha256: str, *, deadline: float) -> Served:
        """``variant``'s answer for the image ``data`` (hash ``sha256``) within ``deadline`` (monotonic)."""
        key = cache_key(variant.name, sha256)
        hit = self.lru.get(key)
        if hit is not None:
            return Served(hit.fragment, hit.result.category, cached=True)
        limits = self.config.limits
        checked = await anyio.to_thread.run_sync(
            lambda: check_image(data, max_bytes=limits.max_upload_bytes, max_pixels=limits.max_pixels)
        )
        hit = await anyio.to_thread.run_sync(self.lookup, key)
        if hit is not None:
            return Served(hit.fragment, hit.result.category, cached=True)

        async def lead() -> SharedAnswer:
            return await anyio.to_thread.run_sync(
                self._call, variant, checked, sha256, deadline, limiter=variant.limiter()
            )

        answer, shared = await self.flights.run(key, lead, deadline=deadline)
        fields = fragment(result_fields(self.config, answer.category, answer.confidence, sha256))
        if answer.certain and key not in self.lru:  # another process's answer: keep it at hand
            result = CachedResult(sha256, answer.category, answer.confidence, answer.backend,
                                  answer.created_at, variant=variant.name)  # fmt: skip
            self.lru.put(key, CacheEntry(result, fields))
        return Served(fields, answer.category, cached=False, certain=answer.certain, shared=shared)

    def _call(self, variant: Variant, image: CheckedImage, sha256: str, deadline: float) -> SharedAnswer:
        """Prepare the image and call the backend (in a worker thread); caches a real result."""
        backend = variant.backend
        prepared = backend.prepare(image)

        def on_call(billed: bool) -> None:
            self.ledger.add(CallEvent(self.clock(), variant.name, billed))

        res = backend.classify(prepared, deadline=deadline, on_call=on_call)
        created = datetime.fromtimestamp(self.clock(), UTC).isoformat()
        answer = SharedAnswer(res.category, res.confidence, res.certain, backend.name, created)
        if res.certain:  # only real results are cached: never a failure, never a guess
            result = CachedResult(sha256, res.category, res.confidence, backend.name, created,
                                  variant=variant.name)  # fmt: skip
            self.lru.put(result.key, self.entry(result))
            try:
                self.store.put(result)
            except StoreError as exc:
                # The call is made (and paid): answer it; only the cache misses this one.
                log.error("could not cache the answer for %s: %s", result.key, exc)
        return answer

    async def answered(self, request_id: str) -> Answered | None:
        """The answered request ``request_id``: this process's unwritten events first, then the store.

        Another worker process writes its events every ``flush_seconds``; an id not found at once
        is looked up again after that long, so feedback right after an answer still joins.
        """
        for attempt in range(2 if self.config.workers > 1 else 1):
            if attempt:
                await anyio.sleep(2 * self.ledger.flush_seconds)
            event = self.ledger.pending_request(request_id)
            if event is not None:
                if event.status != 200 or not event.category:
                    return None
                return Answered(request_id, event.variant, event.category, self.ledger.day(event.ts))
            found = await anyio.to_thread.run_sync(self.store.answered, request_id)
            if found is not None:
                return found
        return None

    def day_stats(self, day: str | None = None) -> DayStats:
        return self.ledger.day_stats(day or self.today())

    def purge_old(self, day: str | None = None) -> int:
        """Drop what is older than ``cache.retentionDays`` before ``day`` (default today).

        Raises StoreError; after a failure the ledger waits :data:`PURGE_RETRY_SECONDS` before it
        queues the next try.
        """
        return self.ledger.purge(day or self.today())

    def close(self) -> None:
        self.ledger.close()
        for v in self.variants.values():
            v.backend.close()
        self.store.close()
