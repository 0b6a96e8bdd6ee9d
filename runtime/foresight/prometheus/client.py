"""A small typed client for the Prometheus HTTP API (``/api/v1/query`` and ``/api/v1/query_range``).

Why not a third-party client: ingestion needs exactly two calls, but with details that matter for
forecasting: range queries are aligned to the step (unaligned hourly queries can come back empty),
split into chunks under Prometheus' 11,000-points-per-series limit and merged without duplicating
boundary samples, and every failure is mapped onto :mod:`foresight.prometheus.errors` so callers
know whether to retry. Temporary failures are retried here with exponential backoff; the sleep
function is injected so tests never sleep.

Credentials (bearer token, basic auth) are passed in as values, sent as headers and never logged
or shown in ``repr``.
"""

from __future__ import annotations

import logging
import math
import time as _time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np
import numpy.typing as npt
import requests

from foresight.api.formatting import rfc3339

from .errors import PrometheusResponseError, PrometheusUnavailable, PromQLError

__all__ = [
    "MAX_POINTS_PER_SERIES",
    "InstantSample",
    "PrometheusClient",
    "PrometheusQueries",
    "RangeSeries",
    "RetryPolicy",
    "align_range",
]

log = logging.getLogger(__name__)

MAX_POINTS_PER_SERIES = 11_000
"""Prometheus refuses a range query resolving to more points than this per series."""
SAMPLES_PER_QUERY = 1_000_000
"""Samples (series x points) one range request asks for, by default: the answer is held as
Python objects while it is decoded (~170 bytes a sample), so an unsplit 30-day hourly query over
10,000 series took ~1.9 GB, 30,000 series three times that. The default of a task's
``source.readBudget.samplesPerQuery``."""
FIRST_CHUNK_SERIES = 10_000
"""Series a range request is assumed to return before any answer has said how many there are
(the first chunk is sized for this many; the next ones for the most seen so far)."""

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How temporary failures (connection errors, timeouts, 5xx) are retried."""

    attempts: int = 4
    """Total tries, the first included; 1 disables retries."""
    base_delay: float = 0.5
    """Seconds before the second try; doubles each time (exponential backoff)."""
    max_delay: float = 10.0
    """Cap on one wait, in seconds, so a long outage does not block a run for minutes per call."""

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        return float(min(self.max_delay, self.base_delay * 2 ** (retry - 1)))


def call_with_retries(
    fn: Callable[[], T], policy: RetryPolicy, sleep: Callable[[float], None], what: str
) -> T:
    """Run ``fn``; on :class:`PrometheusUnavailable`, wait and try again up to ``policy.attempts``."""
    for attempt in range(1, policy.attempts + 1):
        try:
            return fn()
        except PrometheusUnavailable as exc:
            if attempt >= policy.attempts:
                raise PrometheusUnavailable(exc.url, exc.reason, attempts=attempt) from exc
            wait = policy.delay(attempt)
            log.warning(
                "%s failed (%s); retry %d/%d in %.1fs", what, exc.reason, attempt, policy.attempts - 1, wait
            )
            sleep(wait)
    raise AssertionError("unreachable: attempts must be >= 1")


@dataclass(frozen=True)
class InstantSample:
    """One element of an instant-query vector."""

    labels: dict[str, str]
    timestamp: float
    value: float


@dataclass(frozen=True)
class RangeSeries:
    """One series of a range query: sorted, unique timestamps (Unix seconds) and values.

    Values are parsed from Prometheus' strings, so ``NaN`` and ``±Inf`` samples arrive as such.
    """

    labels: dict[str, str]
    timestamps: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]


class PrometheusQueries(Protocol):
    """The two reads ingestion needs: :class:`PrometheusClient` or a narrowed view of it (a
    shard's reader, :mod:`foresight.forecast.shard_read`)."""

    def query(self, expr: str, time: float | None = None) -> list[InstantSample]: ...

    def query_range(self, expr: str, start: float, end: float, step: int) -> list[RangeSeries]: ...


def align_range(start: float, end: float, step: int) -> tuple[int, int]:
    """``start`` rounded down and ``end`` rounded down to multiples of ``step`` (Unix seconds).

    Rounding ``end`` down keeps the grid from reaching past the time asked for.
    """
    if step <= 0:
        raise ValueError(f"step must be a positive number of seconds, got {step}")
    s = math.floor(start / step) * step
    e = math.floor(end / step) * step
    if e < s:
        raise ValueError(f"range end {rfc3339(end)} is before start {rfc3339(start)} (step {step}s)")
    return s, e


def _label_key(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


class PrometheusClient:
    """Queries one Prometheus server.

    Args:
        base_url: e.g. ``http://prometheus.monitoring:9090`` (with any path prefix, without
            ``/api/v1``).
        session: a ``requests.Session`` to reuse (connection pooling, custom CA); one is created
            when omitted.
        bearer_token: sent as ``Authorization: Bearer ...``; never logged.
        basic_auth: ``(user, password)``; never logged.
        timeout: seconds per HTTP request (connect and read).
        retry: how temporary failures are retried.
        sleep: the function used to wait between retries (inject a fake in tests).
        max_points_per_query: points per series per range request, at most
            :data:`MAX_POINTS_PER_SERIES`; longer ranges are split into chunks.
        samples_per_query: series x points per range request (:data:`SAMPLES_PER_QUERY`); a
            range with more is split into time chunks, sized from the series each answer held.
    """

    def __init__(
        self,
        base_url: str,
        *,
        session: requests.Session | None = None,
        bearer_token: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = _time.sleep,
        max_points_per_query: int = MAX_POINTS_PER_SERIES,
        samples_per_query: int = SAMPLES_PER_QUERY,
    ) -> None:
        if bearer_token and basic_auth:
            raise ValueError("pass either bearer_token or basic_auth, not both")
        if not 1 <= max_points_per_query <= MAX_POINTS_PER_SERIES:
            raise ValueError(
                f"max_points_per_query must be in [1, {MAX_POINTS_PER_SERIES}], got {max_points_per_query}"
            )
        self.base_url = base_url.rstrip("/")
        self._session = session if session is not None else requests.Session()
        self._headers: dict[str, str] = {"Accept": "application/json"}
        if bearer_token:
            self._headers["Authorization"] = f"Bearer {bearer_token}"
        self._auth = basic_auth
        self.timeout = timeout
        self.retry = retry if retry is not None else RetryPolicy()
        self._sleep = sleep
        self.max_points_per_query = max_points_per_query
        if samples_per_query < 1:
            raise ValueError(f"samples_per_query must be >= 1, got {samples_per_query}")
        self.samples_per_query = samples_per_query

    def __repr__(self) -> str:  # credentials deliberately left out
        return f"PrometheusClient({self.base_url!r})"

    # -- public API --------------------------------------------------------------------------

    def query(self, expr: str, time: float | None = None) -> list[InstantSample]:
        """Evaluate ``expr`` at ``time`` (Unix seconds; server's now when omitted).

        A scalar result comes back as one sample with no labels.
        """
        params: dict[str, str] = {"query": expr}
        if time is not None:
            params["time"] = _fmt(time)
        data = self._call("/api/v1/query", params, expr)
        result: Any
        rtype, result = data.get("resultType"), data.get("result") or []
        if rtype == "scalar":
            return [InstantSample({}, float(result[0]), float(result[1]))]
        if rtype != "vector":
            raise PrometheusResponseError(
                self.base_url, 200, f"instant query {expr!r} gave resultType {rtype!r}; expected a vector"
            )
        out = []
        for item in result:
            if "value" not in item:  # a native histogram: not a number we can forecast
                continue
            ts, val = item["value"]
            out.append(InstantSample(dict(item.get("metric", {})), float(ts), float(val)))
        return out

    def query_range(
        self, expr: str, start: float, end: float, step: int, *, series_hint: int | None = None
    ) -> list[RangeSeries]:
        """Evaluate ``expr`` at every step from ``start`` to ``end`` (both aligned down to ``step``).

        The range is read in consecutive, non-overlapping time chunks of at most
        ``max_points_per_query`` points and ``samples_per_query`` samples, sized from the most series
        an answer has held so far (``series_hint`` when the caller knows how many to expect,
        else :data:`FIRST_CHUNK_SERIES` until the first answer), and merged per label set; any
        sample a server returns twice is kept once. Each answer is turned into arrays before the
        next is asked for, so memory holds one chunk's decoded JSON, not the whole range's.
        """
        s, e = align_range(start, end, step)
        grid = np.arange(s, e + 1, step, dtype=np.int64)
        # Per series, its values on the grid and which points came: one buffer each from its first
        # answer on, not a small array per chunk to concatenate at the end (30,000 series x 22
        # chunks of them fragmented the heap a pod keeps after reading).
        found: dict[
            tuple[tuple[str, str], ...], tuple[dict[str, str], npt.NDArray[np.float64], npt.NDArray[np.bool_]]
        ] = {}
        seen = max(0, series_hint or 0)
        cs = s
        while cs <= e:
            by_budget = self.samples_per_query // max(1, seen or FIRST_CHUNK_SERIES)
            points = max(1, min((e - cs) // step + 1, self.max_points_per_query, by_budget))
            ce = cs + (points - 1) * step
            data = self._call(
                "/api/v1/query_range",
                {"query": expr, "start": str(cs), "end": str(ce), "step": str(step)},
                expr,
            )
            if data.get("resultType") != "matrix":
                raise PrometheusResponseError(
                    self.base_url, 200, f"range query {expr!r} gave resultType {data.get('resultType')!r}"
                )
            result = data.get("result") or []
            for item in result:
                pairs = item.get("values") or []
                if pairs:
                    self._place(found, item.get("metric", {}), pairs, grid, step, expr)
            seen = max(seen, len(result))
            del data, result  # this chunk's decoded JSON goes before the next is read
            cs = ce + step
        series = []
        for key in list(found):
            labels, values, came = found.pop(key)  # each buffer goes as its series is made
            series.append(RangeSeries(labels, grid[came], values[came]))
        return series

    def _place(
        self,
        found: dict[
            tuple[tuple[str, str], ...], tuple[dict[str, str], npt.NDArray[np.float64], npt.NDArray[np.bool_]]
        ],
        metric: dict[str, str],
        pairs: list[Any],
        grid: npt.NDArray[np.int64],
        step: int,
        expr: str,
    ) -> None:
        """Write one answer's ``[timestamp, "value"]`` pairs into the series' grid buffer; a point
        already there (a chunk edge answered twice) keeps its first value."""
        labels = dict(metric)
        key = _label_key(labels)
        if key not in found:
            found[key] = (labels, np.full(len(grid), np.nan), np.zeros(len(grid), dtype=bool))
        _, values, came = found[key]
        ts = np.fromiter((round(float(p[0])) for p in pairs), dtype=np.int64, count=len(pairs))
        vals = np.fromiter((float(p[1]) for p in pairs), dtype=np.float64, count=len(pairs))
        # Prometheus answers exactly on the grid; a compatible server that does not (its own
        # alignment, a proxy's rounding) has each sample put on the nearest step of the grid, and
        # what lies outside the asked range is left out rather than failing the run.
        slot = np.rint((ts - grid[0]) / step).astype(np.int64)
        inside = (slot >= 0) & (slot < len(grid))
        if not inside.all():
            log.debug("range query %r: %d sample(s) outside %d..%d dropped", expr, int((~inside).sum()),
                      int(grid[0]), int(grid[-1]))  # fmt: skip
        slot, vals = slot[inside], vals[inside]
        new = ~came[slot]
        # A sample answered twice (a chunk edge) keeps its first value, as does the first of two
        # snapped onto one step.
        slot, first = np.unique(slot[new], return_index=True)
        values[slot] = vals[new][first]
        came[slot] = True

    def series(self, match: str, start: float, end: float) -> list[dict[str, str]]:
        """Label sets of the series ``match`` (one vector selector) selects in ``[start, end]``.

        ``/api/v1/series`` reads only the index, never a sample: the cheap way to list what a
        plain selector holds (a sharded run's plan). Prometheus answers at chunk granularity, so a
        series whose chunk overlaps the range is listed even if no sample falls inside it.
        """
        params = {"match[]": match, "start": _fmt(start), "end": _fmt(end)}
        data = self._call("/api/v1/series", params, match, want=list)
        return [dict(item) for item in data]

    # -- HTTP --------------------------------------------------------------------------------

    def _call(self, path: str, params: dict[str, str], expr: str, want: type = dict) -> Any:
        return call_with_retries(
            lambda: self._once(path, params, expr, want), self.retry, self._sleep, f"Prometheus {path}"
        )

    def _once(self, path: str, params: dict[str, str], expr: str, want: type = dict) -> Any:
        url = self.base_url + path
        log.debug("POST %s query=%r", url, expr)
        try:
            # POST with a form body: long PromQL does not hit URL length limits.
            resp = self._session.post(
                url, data=params, headers=self._headers, auth=self._auth, timeout=self.timeout
            )
        except requests.Timeout as exc:
            raise PrometheusUnavailable(url, f"timed out after {self.timeout}s") from exc
        except requests.ConnectionError as exc:
            raise PrometheusUnavailable(url, f"connection failed: {type(exc).__name__}") from exc
        body: dict[str, Any] | None
        try:
            parsed = resp.json()
            body = parsed if isinstance(parsed, dict) else None
        except ValueError:
            body = None
        status = resp.status_code
        if body is not None and body.get("status") == "success" and status == 200:
            data = body.get("data")
            if not isinstance(data, want):
                raise PrometheusResponseError(url, status, f"success without a data {want.__name__}")
            for w in body.get("warnings", []) or []:
                log.warning("Prometheus warning for %r: %s", expr, w)
            return data
        err_type = str(body.get("errorType", "")) if body else ""
        err_msg = str(body.get("error", "")) if body else resp.text[:300]
        if status in (400, 422) and body is not None and err_type in ("bad_data", "execution", ""):
            raise PromQLError(expr, err_msg, err_type or "bad_data")
        if status >= 500 or status in (408, 429) or err_type in ("timeout", "canceled", "unavailable"):
            raise PrometheusUnavailable(url, f"HTTP {status} {err_type}: {err_msg}".strip())
        raise PrometheusResponseError(url, status, err_msg or "no JSON body")


def _fmt(t: float) -> str:
    return repr(float(t)) if not float(t).is_integer() else str(int(t))
