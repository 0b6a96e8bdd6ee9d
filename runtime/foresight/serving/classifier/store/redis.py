"""The shared store for several replicas: results and per-day counters in Redis.

Every replica reads and writes the same keys, so an image classified by one is a cache hit on all.
Statistics are Redis counters per day (a hash of counts, a hash of categories, a set of clients)
that expire after the retention period; the request log is a capped list per day.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..errors import StoreError
from .base import CachedResult, DayStats, RequestRecord, ResultStore

__all__ = ["RedisStore"]

_COUNTERS = (
    "requests",
    "classify_requests",
    "check_cache_requests",
    "cache_hits",
    "cache_misses",
    "errors",
    "llm_calls",
    "llm_failures",
)
_LOG_CAP = 100_000  # request-log entries kept per day


class RedisStore(ResultStore):
    def __init__(
        self,
        url: str,
        *,
        password: str | None = None,
        prefix: str = "foresight:classifier",
        retention_days: int = 30,
        client: Any = None,
    ) -> None:
        import redis

        self._redis_errors: tuple[type[BaseException], ...] = (redis.RedisError,)
        self._r = (
            client
            if client is not None
            else redis.Redis.from_url(
                url,
                password=password or None,
                decode_responses=True,
                socket_timeout=5,
                socket_connect_timeout=5,
            )
        )
        self._p = prefix
        self._ttl = retention_days * 86400 + 86400

    def _key(self, *parts: str) -> str:
        return ":".join((self._p, *parts))

    def _fail(self, what: str, exc: BaseException) -> StoreError:
        # The URL may hold a password: name only the operation.
        return StoreError(
            f"redis store failed to {what}: {type(exc).__name__}: {exc}; check cache.redisUrl "
            "and that Redis is up"
        )

    def get(self, sha256: str) -> CachedResult | None:
        try:
            data = self._r.hgetall(self._key("result", sha256))
        except self._redis_errors as exc:
            raise self._fail("read a result", exc) from exc
        if not data:
            return None
        return CachedResult(
            sha256=sha256,
            category=str(data["category"]),
            confidence=float(data["confidence"]),
            backend=str(data["backend"]),
            created_at=str(data["created_at"]),
            hit_count=int(data.get("hit_count", 0)),
        )

    def put(self, result: CachedResult) -> None:
        key = self._key("result", result.sha256)
        try:
            # HSETNX on the category makes the first writer win when two replicas race on one image.
            if self._r.hsetnx(key, "category", result.category):
                self._r.hset(
                    key,
                    mapping={
                        "confidence": result.confidence,
                        "backend": result.backend,
                        "created_at": result.created_at,
                        "hit_count": result.hit_count,
                    },
                )
        except self._redis_errors as exc:
            raise self._fail("store a result", exc) from exc

    def record(self, records: Sequence[RequestRecord]) -> None:
        if not records:
            return
        try:
            pipe = self._r.pipeline(transaction=False)
            days = set()
            for r in records:
                days.add(r.day)
                counts = self._key("stats", r.day)
                pipe.hincrby(counts, "requests", 1)
                kind = "classify_requests" if r.endpoint == "classify" else "check_cache_requests"
                pipe.hincrby(counts, kind, 1)
                if r.cached:
                    pipe.hincrby(counts, "cache_hits", 1)
                    if r.sha256:
                        pipe.hincrby(self._key("result", r.sha256), "hit_count", 1)
                if r.endpoint == "classify" and r.llm_called:
                    pipe.hincrby(counts, "cache_misses", 1)
                if r.status >= 400:
                    pipe.hincrby(counts, "errors", 1)
                if r.llm_called:
                    pipe.hincrby(counts, "llm_calls", 1)
                if r.llm_failed:
                    pipe.hincrby(counts, "llm_failures", 1)
                if r.category:
                    pipe.hincrby(self._key("categories", r.day), r.category, 1)
                pipe.sadd(self._key("clients", r.day), r.client_id)
                pipe.lpush(self._key("log", r.day), json.dumps(r.__dict__))
            for day in days:
                pipe.ltrim(self._key("log", day), 0, _LOG_CAP - 1)
                for kind in ("stats", "categories", "clients", "log"):
                    pipe.expire(self._key(kind, day), self._ttl)
            pipe.execute()
        except self._redis_errors as exc:
            raise self._fail("record requests", exc) from exc

    def day_stats(self, day: str) -> DayStats:
        try:
            pipe = self._r.pipeline(transaction=False)
            pipe.hgetall(self._key("stats", day))
            pipe.hgetall(self._key("categories", day))
            pipe.scard(self._key("clients", day))
            counts, cats, clients = pipe.execute()
        except self._redis_errors as exc:
            raise self._fail("read statistics", exc) from exc
        stats = DayStats(
            day=day, unique_clients=int(clients), categories={k: int(v) for k, v in cats.items()}
        )
        for name in _COUNTERS:
            setattr(stats, name, int(counts.get(name, 0)))
        return stats

    def purge(self, before_day: str) -> int:
        # Per-day keys expire on their own after the retention period; this drops older ones now.
        removed = 0
        try:
            for kind in ("stats", "categories", "clients", "log"):
                for key in self._r.scan_iter(match=self._key(kind, "*"), count=500):
                    if key.rsplit(":", 1)[-1] < before_day:
                        removed += int(self._r.delete(key))
        except self._redis_errors as exc:
            raise self._fail("purge old statistics", exc) from exc
        return removed

    def ping(self) -> None:
        try:
            self._r.ping()
        except self._redis_errors as exc:
            raise self._fail("ping", exc) from exc

    def close(self) -> None:
        self._r.close()
