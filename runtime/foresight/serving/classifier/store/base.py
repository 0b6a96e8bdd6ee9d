"""The store interface: cached results, the request log and counters by day, feedback, shared flights.

A store is shared by every worker process of a pod (sqlite in WAL mode) or by every replica
(redis). It never decides what a number means: the request events are turned into counter
increments by :mod:`..accounting` (one definition for ``/stats/today`` and ``/metrics``), and the
store adds them up per day and variant. Writes come in batches (:class:`LedgerBatch`) from the
ledger's writer thread, so the serving path never waits on them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = [
    "Answered",
    "CachedResult",
    "FeedbackRecord",
    "FlightState",
    "LedgerBatch",
    "RequestRecord",
    "ResultStore",
    "cache_key",
]


def cache_key(variant: str, sha256: str) -> str:
    """The cache key of an image's answer by one variant: the SHA-256 alone for the unnamed
    variant (so caches written before variants existed keep answering), else ``<variant>/<sha>``."""
    return f"{variant}/{sha256}" if variant else sha256


@dataclass(frozen=True)
class CachedResult:
    """A real classification (never a guess or a failure) of the image with this SHA-256 by one
    variant; global, not per client."""

    sha256: str
    category: str
    confidence: float
    backend: str
    created_at: str  # ISO 8601, UTC
    hit_count: int = 0
    variant: str = ""

    @property
    def key(self) -> str:
        return cache_key(self.variant, self.sha256)


class RequestRecord(NamedTuple):
    """One classify or check-cache request, as the request log keeps it (no image bytes, no secrets).

    ``outcome`` is one of :class:`..accounting.Outcome`; ``category`` is set when the request was
    answered with one (status 200), which is what feedback can be given for. A tuple: a batch of
    thousands is made and written several times a second, and the store inserts it as it is.
    """

    ts: float  # unix seconds
    day: str  # YYYY-MM-DD in the service's time zone
    endpoint: str  # "classify" or "check-cache"
    client_id: str
    status: int
    latency_ms: float
    request_id: str = ""
    variant: str = ""
    sha256: str | None = None
    category: str | None = None
    outcome: str = ""


@dataclass
class LedgerBatch:
    """What one flush of the ledger writes, in one transaction."""

    records: list[RequestRecord] = field(default_factory=list)
    counters: dict[tuple[str, str, str], float] = field(default_factory=dict)
    """(day, variant, counter name) -> increment."""
    hits: dict[str, int] = field(default_factory=dict)
    """cache key -> cache hits to add to the result's hit count."""
    category_hours: dict[tuple[str, str, str], int] = field(default_factory=dict)
    """(UTC hour ``YYYY-MM-DDTHH``, variant, category) -> answers served (prediction drift)."""

    def __bool__(self) -> bool:
        return bool(self.records or self.counters or self.hits or self.category_hours)


@dataclass(frozen=True)
class Answered:
    """A request the service answered with a category: what feedback joins to."""

    request_id: str
    variant: str
    category: str
    day: str


@dataclass(frozen=True)
class FeedbackRecord:
    """The true category of an answered request; the first one recorded per request id counts."""

    request_id: str
    ts: float
    day: str  # the day the feedback arrived (its counters count there)
    variant: str
    category: str  # what the service answered
    label: str  # the true category
    correct: bool


@dataclass(frozen=True)
class FlightState:
    """Where another process's backend call for a cache key stands (shared flights)."""

    result: CachedResult | None = None
    """The cached answer, once there is one."""
    outcome: dict[str, Any] | None = None
    """The finished flight's outcome for waiters (an uncached answer or an error), for a few seconds."""
    running: bool = False
    """Someone holds the flight and has not finished (nor expired)."""


class ResultStore(ABC):
    """Thread-safe: called from the request threads and the ledger's writer at once."""

    @abstractmethod
    def get(self, key: str) -> CachedResult | None:
        """The cached result under ``key`` (:func:`cache_key`)."""

    @abstractmethod
    def put(self, result: CachedResult) -> None:
        """Store a result; an existing one for the same key is kept (first answer wins)."""

    @abstractmethod
    def write(self, batch: LedgerBatch) -> None:
        """Append the request log, add the counters, hit counts and category hours of ``batch``."""

    @abstractmethod
    def counters(self, day: str) -> dict[str, dict[str, float]]:
        """``{variant: {counter name: value}}`` of ``day``."""

    @abstractmethod
    def unique_clients(self, day: str) -> int:
        """Distinct client ids in ``day``'s request log."""

    @abstractmethod
    def answered(self, request_id: str) -> Answered | None:
        """The answered request with this id (within retention), or None."""

    @abstractmethod
    def add_feedback(self, feedback: FeedbackRecord) -> tuple[FeedbackRecord, bool]:
        """Record ``feedback`` unless its request already has some; returns (the feedback that
        counts, whether this call recorded it). A recorded one adds ``feedback_correct`` or
        ``feedback_incorrect`` to its day's counters of its variant."""

    @abstractmethod
    def category_hours(self, first_hour: str, last_hour: str) -> dict[tuple[str, str], int]:
        """``{(variant, category): answers}`` over the UTC hours ``first_hour..last_hour`` (inclusive)."""

    @abstractmethod
    def claim_flight(self, key: str, owner: str, ttl: float) -> bool:
        """Take the flight for ``key`` for ``ttl`` seconds unless someone else holds an unexpired one."""

    @abstractmethod
    def finish_flight(self, key: str, owner: str, outcome: Mapping[str, Any], keep: float) -> None:
        """Leave ``outcome`` for waiters for ``keep`` seconds and release the flight."""

    @abstractmethod
    def flight(self, key: str) -> FlightState:
        """The result, a finished flight's outcome, or whether one is running, for ``key``."""

    @abstractmethod
    def purge(self, before_day: str) -> int:
        """Drop request-log entries, counters, feedback and category hours before ``before_day``
        (category hours: of days before it, UTC); returns how many went."""

    def ping(self) -> None:  # noqa: B027 - stores that cannot be down need nothing
        """Raise StoreError when the store cannot be reached."""

    def close(self) -> None:  # noqa: B027
        """Release connections."""


def counters_of(rows: Sequence[tuple[str, str, float]]) -> dict[str, dict[str, float]]:
    """``{variant: {name: value}}`` from ``(variant, name, value)`` rows."""
    out: dict[str, dict[str, float]] = {}
    for variant, name, value in rows:
        out.setdefault(variant, {})[name] = out.get(variant, {}).get(name, 0.0) + float(value)
    return out
