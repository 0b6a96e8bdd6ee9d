"""What each number of the service means, defined once, and the ledger that applies them.

Every classify or check-cache request ends as one :class:`RequestEvent` (status, variant, outcome,
whether it shared another request's backend call); every backend call attempt as one
:class:`CallEvent`. :func:`request_counts` and :func:`call_counts` turn an event into counter
increments, and the :class:`Ledger` applies the same increments, from the same batch of events,
to the Prometheus instruments (``/metrics``) and to the store's day counters
(``/stats/today``). So the two views cannot disagree about what a number means; they differ only
in scope (``/metrics`` counts this process since it started, ``/stats/today`` every process and
replica since midnight in the service's time zone).

The definitions (per variant; the totals add the variants up):

==========================  ===================================================================
``requests``                classify and check-cache requests, whatever their outcome
``classify_requests``       ... of them to classify; ``check_cache_requests`` to check-cache
``cache_hits``              requests answered from the cache (classify and check-cache)
``cache_misses``            classify requests for an image not in the cache (answered by a
                            backend call, their own or a shared one, or failed by it)
``check_cache_misses``      check-cache requests for a hash not in the cache
``coalesced``               classify requests that waited for another request's backend call
                            for the same image instead of making their own
``uncertain_answers``       classify answers that named no category or several: low confidence,
                            returned but not cached (:mod:`.answers`)
``failures``                classify requests that failed because the backend did (502, 429,
                            503 after the retries, or the deadline)
``rejected``                requests refused for their input (401, 413, 415, 422)
``errors``                  requests answered with a status of 400 or more
``llm_calls``               backend calls attempted, every retry included
``llm_calls_billed``        backend calls the upstream answered with a result (what it bills)
``cost_spent``              the price per call of each billed call, added up
``llm_calls_saved``         backend calls not made: cache hits plus coalesced requests
``cost_saved``              the price per call of each call saved, added up
``category:<key>``          answers served in that category (cached or not)
``feedback_correct``        feedback that agreed with the answer; ``feedback_incorrect``: did not
==========================  ===================================================================

``/metrics`` has the same numbers as counters (``foresight_classifier_cache_hits_total`` ...,
see :mod:`.telemetry`). Requests to other endpoints (health, stats, metrics, feedback) are counted
in ``foresight_classifier_requests_total`` only.

Writes never happen on the serving path: :meth:`Ledger.add` appends the event to a list, and a
writer thread applies a batch every ``flush_seconds`` (one store transaction and one metrics
increment per distinct label set, however many requests). ``/stats/today`` and ``/metrics``
flush first, so they include every request answered before them in this process.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import logging
import threading
import time
from collections import Counter as Tally
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .errors import StoreError
from .store.base import LedgerBatch, RequestRecord, ResultStore
from .telemetry import API_ENDPOINTS, ClassifierMetrics

__all__ = [
    "PURGE_RETRY_SECONDS",
    "CallEvent",
    "DayStats",
    "FeedbackEvent",
    "Ledger",
    "Outcome",
    "RequestEvent",
    "call_counts",
    "request_counts",
]

log = logging.getLogger(__name__)

PURGE_RETRY_SECONDS = 3600.0
"""After a failed retention purge, the next try waits this long (not one per request)."""
YIELD_EVERY = 200
"""The writer gives the GIL up after this many events of a batch (a burst makes batches of thousands)."""
LOST_LOG_SECONDS = 60.0
"""While the store refuses writes, the loss is logged at most this often."""


class Outcome:
    """How a classify / check-cache request ended (one per request)."""

    HIT = "hit"
    MISS = "miss"
    UNCERTAIN = "uncertain"
    FAILED = "failed"
    REJECTED = "rejected"
    NOT_FOUND = "not_found"
    UNAVAILABLE = "unavailable"
    ERROR = "error"


@dataclass(slots=True)
class RequestEvent:
    """One HTTP request, as the front layer saw it end."""

    ts: float
    endpoint: str
    status: int
    variant: str
    latency_s: float
    request_id: str = ""
    client_id: str = ""
    sha256: str | None = None
    key: str | None = None
    """The cache key the request was answered under (for the result's hit count)."""
    category: str | None = None
    outcome: str = ""
    shared: bool = False


@dataclass(slots=True)
class CallEvent:
    """One backend call attempt."""

    ts: float
    variant: str
    billed: bool


@dataclass(slots=True)
class FeedbackEvent:
    """Feedback recorded (the first for its request)."""

    ts: float
    variant: str
    correct: bool


def request_counts(e: RequestEvent) -> list[tuple[str, float]]:
    """The counters one request adds to (before the price: ``cost_saved`` is 1 call here)."""
    if e.endpoint not in API_ENDPOINTS:
        return []
    out: list[tuple[str, float]] = [
        ("requests", 1),
        ("classify_requests" if e.endpoint == "classify" else "check_cache_requests", 1),
    ]
    if e.status >= 400:
        out.append(("errors", 1))
    o = e.outcome
    if o == Outcome.HIT:
        out += [("cache_hits", 1), ("llm_calls_saved", 1), ("cost_saved", 1)]
    elif o in (Outcome.MISS, Outcome.UNCERTAIN, Outcome.FAILED):
        out.append(("cache_misses", 1))
        if o == Outcome.UNCERTAIN:
            out.append(("uncertain_answers", 1))
        elif o == Outcome.FAILED:
            out.append(("failures", 1))
        if e.shared:
            out += [("coalesced", 1), ("llm_calls_saved", 1), ("cost_saved", 1)]
    elif o == Outcome.NOT_FOUND:
        out.append(("check_cache_misses", 1))
    elif o == Outcome.REJECTED:
        out.append(("rejected", 1))
    if e.status == 200 and e.category:
        out.append((f"category:{e.category}", 1))
    return out


def call_counts(c: CallEvent) -> list[tuple[str, float]]:
    """The counters one backend call attempt adds to (``cost_spent`` is 1 call here)."""
    if c.billed:
        return [("llm_calls", 1), ("llm_calls_billed", 1), ("cost_spent", 1)]
    return [("llm_calls", 1)]


def _observe_many(child: Any, values: list[float]) -> None:
    """``child.observe(v)`` for every value, in one pass per bucket.

    prometheus_client has no bulk observe, and its per-value ``observe`` takes a lock per call;
    for a burst of cached answers that was most of the writer's time. The child's ``_sum``,
    ``_buckets`` (per-bucket, not cumulative) and ``_upper_bounds`` are what its ``observe`` itself
    updates (in multiprocess mode too); without them it falls back to ``observe``.
    """
    bounds = getattr(child, "_upper_bounds", None)
    buckets = getattr(child, "_buckets", None)
    if bounds is None or buckets is None or not hasattr(child, "_sum"):
        for v in values:
            child.observe(v)
        return
    counts = Tally(bisect.bisect_left(bounds, v) for v in values)
    child._sum.inc(sum(values))
    for index, n in counts.items():
        buckets[index].inc(n)


@dataclass
class DayStats:
    """One day's counters, per variant and in total (``/stats/today``)."""

    day: str
    totals: dict[str, float] = field(default_factory=dict)
    variants: dict[str, dict[str, float]] = field(default_factory=dict)
    unique_clients: int = 0

    def __getattr__(self, name: str) -> float:
        # stats.requests, stats.cache_hits...: a counter that never moved reads 0.
        if name.startswith("_"):
            raise AttributeError(name)
        return self.totals.get(name, 0)


class Ledger:
    """Collects request, call and feedback events and applies them in batches (see the module doc).

    ``prices`` and ``backends`` map each variant to its price per backend call and backend name.
    """

    def __init__(
        self,
        store: ResultStore,
        metrics: ClassifierMetrics,
        *,
        prices: Mapping[str, float],
        backends: Mapping[str, str],
        clock: Callable[[], float],
        timezone: str,
        retention_days: int,
        flush_seconds: float = 0.25,
        start_thread: bool = True,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.prices = dict(prices)
        self.backends = dict(backends)
        self.clock = clock
        self.tz = ZoneInfo(timezone)
        self.retention_days = retention_days
        self.flush_seconds = flush_seconds
        self._pending: list[RequestEvent | CallEvent | FeedbackEvent] = []
        self._writing: list[RequestEvent | CallEvent | FeedbackEvent] = []
        """The batch a flush is writing: still visible to :meth:`pending_request` until stored."""
        self._pending_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._tasks: list[Callable[[], object]] = []
        # Retention: the day the store was last purged for, and when a failed purge may be retried.
        self._lost = 0
        self._lost_logged_at = 0.0
        self._purged_day: str | None = None
        self._purge_retry_at = 0.0
        self._thread: threading.Thread | None = None
        if start_thread:
            self.start()

    def start(self) -> None:
        """Start the writer thread (once)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="classifier-ledger", daemon=True)
            self._thread.start()

    # -- the serving side: appends only --------------------------------------------------------

    def add(self, event: RequestEvent | CallEvent | FeedbackEvent) -> None:
        with self._pending_lock:
            self._pending.append(event)

    def pending_request(self, request_id: str) -> RequestEvent | None:
        """An answered request of this process not yet written to the store (the feedback join)."""
        with self._pending_lock:
            for e in itertools.chain(reversed(self._pending), reversed(self._writing)):
                if isinstance(e, RequestEvent) and e.request_id == request_id:
                    return e
        return None

    # -- the writer ----------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            self.flush()
        self.flush()

    @functools.lru_cache(maxsize=4)  # noqa: B019 - a handful of minutes at most, per ledger
    def _day_of_minute(self, minute: int) -> str:
        return datetime.fromtimestamp(minute * 60, self.tz).date().isoformat()

    def day(self, ts: float) -> str:
        """The day of ``ts`` in the service's time zone (days change on minute boundaries everywhere)."""
        return self._day_of_minute(int(ts // 60))

    def flush(self) -> None:
        """Apply every pending event to the metrics and the store (one batch, one transaction)."""
        with self._flush_lock:
            with self._pending_lock:
                # Until the store has them, the events stay findable (feedback right after an answer).
                events, self._pending, self._writing = self._pending, [], self._pending
            if events:
                batch = self._apply(events)
                try:
                    self.store.write(batch)
                except StoreError as exc:
                    self._write_failed(len(batch.records), exc)
                else:
                    self._lost = 0
            with self._pending_lock:
                self._writing = []
            tasks, self._tasks = self._tasks, []  # after the write: a purge sees the batch's day
            for task in tasks:
                try:
                    task()
                except Exception:  # maintenance failing must not stop the writer
                    log.exception("request-log maintenance task failed")

    def _write_failed(self, records: int, exc: StoreError) -> None:
        # Losing statistics must not take the service down. The error is logged when it starts and
        # then once a minute (a store that is down would otherwise log every flush).
        now = time.monotonic()
        self._lost += records
        if self._lost == records or now - self._lost_logged_at >= LOST_LOG_SECONDS:
            log.error("could not write request-log records (%d lost so far): %s", self._lost, exc)
            self._lost_logged_at = now

    def _apply(self, events: Sequence[RequestEvent | CallEvent | FeedbackEvent]) -> LedgerBatch:
        """The batch for the store, with the metrics updated from the same events.

        Events are first grouped by everything that decides their counts (a burst of hits on one
        image is one group), so the definitions and the metric labels are applied once per group;
        per event there is only the request-log row and the latency.
        """
        batch = LedgerBatch()
        labelled: defaultdict[tuple[str, str, str], float] = defaultdict(float)  # (name, variant, endpoint)
        shapes: Tally[tuple[Any, ...]] = Tally()
        latencies: defaultdict[tuple[str, str], list[float]] = defaultdict(list)
        for i, e in enumerate(events):
            if i % YIELD_EVERY == YIELD_EVERY - 1:
                time.sleep(0)  # let the serving thread have the GIL between slices of a big batch
            if isinstance(e, FeedbackEvent):
                labelled[("feedback", e.variant, "true" if e.correct else "false")] += 1
            elif isinstance(e, CallEvent):
                shapes[(self.day(e.ts), e.variant, e.billed)] += 1
            else:
                latencies[(e.endpoint, e.variant)].append(e.latency_s)
                day = self.day(e.ts)
                hour = self._hour(int(e.ts // 3600)) if e.status == 200 and e.category else ""
                v = e.variant
                shapes[(day, v, e.endpoint, e.status, e.outcome, e.category, e.shared, e.key, hour)] += 1
                if e.endpoint in API_ENDPOINTS:
                    batch.records.append(self._record(e, day))
        for shape, n in shapes.items():
            self._apply_shape(shape, n, batch, labelled)
        for (name, variant, extra), value in labelled.items():
            self._inc(name, variant, extra, value)
        for (endpoint, variant), values in latencies.items():
            _observe_many(self.metrics.latency.labels(endpoint, variant), values)
            self.metrics.latency_squared.labels(endpoint, variant).inc(sum(v * v for v in values))
        return batch

    def _apply_shape(
        self,
        shape: tuple[Any, ...],
        n: int,
        batch: LedgerBatch,
        labelled: defaultdict[tuple[str, str, str], float],
    ) -> None:
        """``n`` events of one shape: their counters (store and metrics), hits and category hours."""
        if len(shape) == 3:  # a backend call
            day, variant, billed = shape
            counts, endpoint = call_counts(CallEvent(0.0, variant, billed)), ""
        else:
            day, variant, endpoint, status, outcome, category, shared, key, hour = shape
            self.metrics.requests.labels(endpoint, str(status), variant).inc(n)
            if endpoint not in API_ENDPOINTS:
                return
            self._maybe_purge(day)
            e = RequestEvent(0.0, endpoint, status, variant, 0.0, category=category, outcome=outcome,
                             shared=shared)  # fmt: skip
            counts = request_counts(e)
            if outcome == Outcome.HIT and key:
                batch.hits[key] = batch.hits.get(key, 0) + n
            if hour:
                batch.category_hours[(hour, variant, category)] = (
                    batch.category_hours.get((hour, variant, category), 0) + n
                )
        price = self.prices.get(variant, 0.0)
        for name, count in counts:
            value = n * count * (price if name.startswith("cost_") else 1)
            batch.counters[(day, variant, name)] = batch.counters.get((day, variant, name), 0.0) + value
            labelled[(name, variant, endpoint)] += value

    @staticmethod
    @functools.lru_cache(maxsize=4)
    def _hour(hour: int) -> str:
        return time.strftime("%Y-%m-%dT%H", time.gmtime(hour * 3600))

    @staticmethod
    def _record(e: RequestEvent, day: str) -> RequestRecord:
        return RequestRecord(
            e.ts, day, e.endpoint, e.client_id, e.status, round(e.latency_s * 1000, 3), e.request_id,
            e.variant, e.sha256, e.category, e.outcome,
        )  # fmt: skip

    def _inc(self, name: str, variant: str, extra: str, n: float) -> None:
        """The Prometheus side of counter ``name`` (``extra``: the endpoint, or feedback's correct)."""
        m = self.metrics
        backend = self.backends.get(variant, "")
        if name == "feedback":
            m.feedback.labels(variant, extra).inc(n)
        elif name == "cache_hits":
            m.cache_hits.labels(extra, variant).inc(n)
        elif name in ("cache_misses", "check_cache_misses"):
            m.cache_misses.labels(extra, variant).inc(n)
        elif name == "coalesced":
            m.coalesced.labels(variant).inc(n)
        elif name == "uncertain_answers":
            m.uncertain.labels(variant).inc(n)
        elif name == "failures":
            m.backend_failures.labels(backend, variant).inc(n)
        elif name == "llm_calls":
            m.backend_calls.labels(backend, variant).inc(n)
        elif name == "llm_calls_billed":
            m.backend_billed.labels(backend, variant).inc(n)
        elif name == "llm_calls_saved":
            m.calls_saved.labels(variant).inc(n)
        elif name == "cost_spent":
            m.cost_spent.labels(variant).inc(n)
        elif name == "cost_saved":
            m.cost_saved.labels(variant).inc(n)
        elif name.startswith("category:"):
            m.classifications.labels(name.partition(":")[2], variant).inc(n)
        # requests, *_requests, errors and rejected: foresight_classifier_requests_total by status

    # -- statistics and retention --------------------------------------------------------------

    def day_stats(self, day: str) -> DayStats:
        """``day``'s counters from the store (after a flush), per variant and in total."""
        self.flush()
        variants = self.store.counters(day)
        totals: dict[str, float] = {}
        for counts in variants.values():
            for name, value in counts.items():
                totals[name] = totals.get(name, 0.0) + value
        return DayStats(day, totals, variants, self.store.unique_clients(day))

    def purge(self, day: str) -> int:
        """Drop what is older than the retention before ``day``; raises StoreError (then the next
        try waits :data:`PURGE_RETRY_SECONDS`)."""
        cutoff = date.fromisoformat(day) - timedelta(days=self.retention_days)
        try:
            removed = self.store.purge(cutoff.isoformat())
        except StoreError:
            self._purged_day = None
            self._purge_retry_at = self.clock() + PURGE_RETRY_SECONDS
            raise
        self._purged_day = day
        return removed

    def _maybe_purge(self, day: str) -> None:
        # Runs on the writer thread only: the first event of a new day queues one purge, after the
        # batch that holds it is written.
        if day == self._purged_day or self.clock() < self._purge_retry_at:
            return
        self._purged_day = day
        self._tasks.append(functools.partial(self._purge_quietly, day))

    def _purge_quietly(self, day: str) -> None:
        try:
            removed = self.purge(day)
        except StoreError as exc:
            log.error("could not purge the request log (next try in %.0f s): %s", PURGE_RETRY_SECONDS, exc)
            return
        log.info("purged %d request-log entries older than %d days", removed, self.retention_days)

    def close(self) -> None:
        """Stop the writer thread after a last flush."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        else:
            self.flush()
