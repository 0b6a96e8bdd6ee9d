"""The store interface: cached results by SHA-256, per-image hit counts, and a request log by day."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["CachedResult", "DayStats", "RequestRecord", "ResultStore"]


@dataclass(frozen=True)
class CachedResult:
    """A successful classification, keyed by the SHA-256 of the uploaded bytes (global, not per client)."""

    sha256: str
    category: str
    confidence: float
    backend: str
    created_at: str  # ISO 8601, UTC
    hit_count: int = 0


@dataclass(frozen=True)
class RequestRecord:
    """One classify or check-cache request, as the request log keeps it (no image bytes, no secrets)."""

    ts: float  # unix seconds
    day: str  # YYYY-MM-DD in the service's time zone
    endpoint: str  # "classify" or "check-cache"
    client_id: str
    status: int
    latency_ms: float
    sha256: str | None = None
    category: str | None = None
    cached: bool = False  # answered from the cache
    llm_called: bool = False  # the backend was called (successfully or not)
    llm_failed: bool = False


@dataclass
class DayStats:
    """Counts for one day, derived from the request log."""

    day: str
    requests: int = 0
    classify_requests: int = 0
    check_cache_requests: int = 0
    cache_hits: int = 0
    cache_misses: int = 0  # check-cache misses are not counted: the client then uploads
    errors: int = 0
    unique_clients: int = 0
    llm_calls: int = 0
    llm_failures: int = 0
    categories: dict[str, int] = field(default_factory=dict)


class ResultStore(ABC):
    """Thread-safe: called from the request threads and the request-log writer at once."""

    @abstractmethod
    def get(self, sha256: str) -> CachedResult | None: ...

    @abstractmethod
    def put(self, result: CachedResult) -> None:
        """Store a result; an existing one for the same hash is kept (first answer wins)."""

    @abstractmethod
    def record(self, records: Sequence[RequestRecord]) -> None:
        """Append to the request log and add the cache hits to the results' hit counts."""

    @abstractmethod
    def day_stats(self, day: str) -> DayStats: ...

    @abstractmethod
    def purge(self, before_day: str) -> int:
        """Drop request-log entries of days before ``before_day``; returns how many went."""

    def ping(self) -> None:  # noqa: B027 - stores that cannot be down need nothing
        """Raise StoreError when the store cannot be reached."""

    def close(self) -> None:  # noqa: B027
        """Release connections."""
