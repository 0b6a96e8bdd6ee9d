"""The shared store for several replicas: results, day counters, feedback and flights in Redis.

Every replica reads and writes the same keys, so an image classified by one is a cache hit on all,
and one replica's backend call for an image is shared by the others' requests for it. Counters
are a hash per day (fields ``<variant>|<name>``), clients a set per day, the request log a capped
list per day, answered requests one small key each (for the feedback join), category counts a
hash per UTC hour; all expire after the retention period.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
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

__all__ = ["RedisStore"]

_LOG_CAP = 100_000  # request-log entries kept per day
_DAY_KINDS = ("stats", "clients", "log")


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

    def _result(self, key: str, data: Any) -> CachedResult | None:
        if not data or "category" not in data or "confidence" not in data:
            return None  # absent, or a put still halfway (HSETNX done, HSET not yet)
        return CachedResult(
            sha256=str(data.get("sha256") or key.rpartition("/")[2]),
            category=str(data["category"]),
            confidence=float(data["confidence"]),
            backend=str(data.get("backend", "")),
            created_at=str(data.get("created_at", "")),
            hit_count=int(data.get("hit_count", 0)),
            variant=str(data.get("variant", "")),
        )

    def get(self, key: str) -> CachedResult | None:
        try:
            data = self._r.hgetall(self._key("result", key))
        except self._redis_errors as exc:
            raise self._fail("read a result", exc) from exc
        return self._result(key, data)

    def put(self, result: CachedResult) -> None:
        key = self._key("result", result.key)
        try:
            # HSETNX on the category makes the first writer win when two replicas race on one image.
            if self._r.hsetnx(key, "category", result.category):
                self._r.hset(
                    key,
                    mapping={
                        "sha256": result.sha256,
                        "variant": result.variant,
                        "confidence": result.confidence,
                        "backend": result.backend,
                        "created_at": result.created_at,
                        "hit_count": result.hit_count,
                    },
                )
        except self._redis_errors as exc:
            raise self._fail("store a result", exc) from exc

    def write(self, batch: LedgerBatch) -> None:
        if not batch:
            return
        try:
            pipe = self._r.pipeline(transaction=False)
            days: set[str] = set()
            for (day, variant, name), value in batch.counters.items():
                days.add(day)
                pipe.hincrbyfloat(self._key("stats", day), f"{variant}|{name}", value)
            for r in batch.records:
                days.add(r.day)
                pipe.sadd(self._key("clients", r.day), r.client_id)
                pipe.lpush(self._key("log", r.day), json.dumps(r._asdict()))
                if r.status == 200 and r.category and r.request_id:
                    answered = {"variant": r.variant, "category": r.category, "day": r.day}
                    pipe.set(self._key("req", r.request_id), json.dumps(answered), ex=self._ttl)
            for key, n in batch.hits.items():
                pipe.hincrby(self._key("result", key), "hit_count", n)
            hours: set[str] = set()
            for (hour, variant, category), n in batch.category_hours.items():
                hours.add(hour)
                pipe.hincrby(self._key("cathours", hour), f"{variant}|{category}", n)
            for day in days:
                pipe.ltrim(self._key("log", day), 0, _LOG_CAP - 1)
                for kind in _DAY_KINDS:
                    pipe.expire(self._key(kind, day), self._ttl)
            for hour in hours:
                pipe.expire(self._key("cathours", hour), self._ttl)
            pipe.execute()
        except self._redis_errors as exc:
            raise self._fail("record requests", exc) from exc

    def counters(self, day: str) -> dict[str, dict[str, float]]:
        try:
            data = self._r.hgetall(self._key("stats", day))
        except self._redis_errors as exc:
            raise self._fail("read statistics", exc) from exc
        rows = []
        for field, value in data.items():
            variant, _, name = str(field).partition("|")
            rows.append((variant, name, float(value)))
        return counters_of(rows)

    def unique_clients(self, day: str) -> int:
        try:
            return int(self._r.scard(self._key("clients", day)))
        except self._redis_errors as exc:
            raise self._fail("read statistics", exc) from exc

    def answered(self, request_id: str) -> Answered | None:
        try:
            raw = self._r.get(self._key("req", request_id))
        except self._redis_errors as exc:
            raise self._fail("look a request up", exc) from exc
        if raw is None:
            return None
        data = json.loads(raw)
        return Answered(request_id, str(data["variant"]), str(data["category"]), str(data["day"]))

    def add_feedback(self, feedback: FeedbackRecord) -> tuple[FeedbackRecord, bool]:
        f = feedback
        key = self._key("feedback", f.request_id)
        try:
            if self._r.set(key, json.dumps(asdict(f)), nx=True, ex=self._ttl):
                name = "feedback_correct" if f.correct else "feedback_incorrect"
                self._r.hincrbyfloat(self._key("stats", f.day), f"{f.variant}|{name}", 1)
                self._r.expire(self._key("stats", f.day), self._ttl)
                return f, True
            raw = self._r.get(key)
        except self._redis_errors as exc:
            raise self._fail("record feedback", exc) from exc
        return FeedbackRecord(**json.loads(raw)) if raw else f, False

    def category_hours(self, first_hour: str, last_hour: str) -> dict[tuple[str, str], int]:
        start = datetime.strptime(first_hour, "%Y-%m-%dT%H").replace(tzinfo=UTC)
        end = datetime.strptime(last_hour, "%Y-%m-%dT%H").replace(tzinfo=UTC)
        hours = []
        while start <= end:
            hours.append(start.strftime("%Y-%m-%dT%H"))
            start += timedelta(hours=1)
        out: dict[tuple[str, str], int] = {}
        try:
            pipe = self._r.pipeline(transaction=False)
            for hour in hours:
                pipe.hgetall(self._key("cathours", hour))
            for data in pipe.execute():
                for field, n in data.items():
                    variant, _, category = field.partition("|")
                    out[(variant, category)] = out.get((variant, category), 0) + int(n)
        except self._redis_errors as exc:
            raise self._fail("read category counts", exc) from exc
        return out

    def claim_flight(self, key: str, owner: str, ttl: float) -> bool:
        try:
            self._r.delete(self._key("flightout", key))
            return bool(self._r.set(self._key("flight", key), owner, nx=True, px=max(1, int(ttl * 1000))))
        except self._redis_errors as exc:
            raise self._fail("claim a backend call", exc) from exc

    def finish_flight(self, key: str, owner: str, outcome: Mapping[str, Any], keep: float) -> None:
        try:
            pipe = self._r.pipeline(transaction=True)
            pipe.set(self._key("flightout", key), json.dumps(dict(outcome)), px=max(1, int(keep * 1000)))
            pipe.delete(self._key("flight", key))
            pipe.execute()
        except self._redis_errors as exc:
            raise self._fail("finish a backend call", exc) from exc

    def flight(self, key: str) -> FlightState:
        try:
            pipe = self._r.pipeline(transaction=False)
            pipe.hgetall(self._key("result", key))
            pipe.get(self._key("flightout", key))
            pipe.exists(self._key("flight", key))
            data, outcome, running = pipe.execute()
        except self._redis_errors as exc:
            raise self._fail("read a backend call", exc) from exc
        result = self._result(key, data)
        if result is not None:
            return FlightState(result=result)
        if outcome is not None:
            return FlightState(outcome=json.loads(outcome))
        return FlightState(running=bool(running))

    def purge(self, before_day: str) -> int:
        # Per-day keys expire on their own after the retention period; this drops older ones now.
        removed = 0
        try:
            for kind in (*_DAY_KINDS, "cathours"):
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
