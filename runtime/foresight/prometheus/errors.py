"""Every error that Prometheus I/O (queries, ingestion, Pushgateway, remote write) can raise.

One hierarchy, split the way a caller has to react (kopf's convention): ``temporary`` errors
(:class:`PrometheusUnavailable`) are worth retrying later; everything else is permanent until a
person changes the query, the task spec or the server. Each error carries the data needed to fix
the cause (the query, the range, the counts) and never a credential.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from foresight.api.formatting import rfc3339, series_text

__all__ = [
    "DuplicateSeriesError",
    "IngestionError",
    "InsufficientHistoryError",
    "NoSeriesError",
    "PromQLError",
    "PrometheusError",
    "PrometheusResponseError",
    "PrometheusUnavailable",
    "PushgatewayError",
    "PushgatewayUnavailable",
    "RemoteWriteError",
    "TooManySeriesError",
]


def _span(start: int, end: int, step: int) -> str:
    return f"{rfc3339(start)} to {rfc3339(end)} at step {step}s"


class PrometheusError(Exception):
    """Base of every Prometheus I/O error."""

    temporary: ClassVar[bool] = False
    """True when retrying the same call later can succeed."""


class PrometheusUnavailable(PrometheusError):
    """The server could not be reached or answered 5xx / timed out: temporary, retry later."""

    temporary: ClassVar[bool] = True

    def __init__(self, url: str, reason: str, attempts: int = 1) -> None:
        self.url = url
        self.reason = reason
        self.attempts = attempts
        super().__init__(
            f"{url} is unavailable after {attempts} attempt(s): {reason}. Check that the server is "
            "running and reachable from here (URL, network policy, DNS); the call will be retried."
        )


class PushgatewayUnavailable(PrometheusUnavailable):
    """The Pushgateway, not Prometheus, could not be reached: temporary, retry later."""


class PromQLError(PrometheusError):
    """Prometheus rejected the query (HTTP 400 ``bad_data`` or 422): permanent, fix the PromQL."""

    def __init__(self, query: str, message: str, error_type: str = "bad_data") -> None:
        self.query = query
        self.message = message
        """Prometheus' own error text."""
        self.error_type = error_type
        super().__init__(f"Prometheus rejected the query {query!r} ({error_type}): {message}")


class PrometheusResponseError(PrometheusError):
    """An answer that is not what the HTTP API documents (auth failure, proxy page, bad JSON)."""

    def __init__(self, url: str, status: int, detail: str) -> None:
        self.url = url
        self.status = status
        self.detail = detail
        hint = ""
        if status in (401, 403):
            hint = " Check the bearer token / basic-auth Secret the task refers to."
        elif status == 404:
            hint = " Check the base URL (it should point at Prometheus, not at /api/v1)."
        super().__init__(f"unexpected response from {url} (HTTP {status}): {detail}.{hint}")


class PushgatewayError(PrometheusError):
    """The Pushgateway refused a push or delete (HTTP 4xx): permanent."""

    def __init__(self, url: str, status: int, detail: str) -> None:
        self.url = url
        self.status = status
        self.detail = detail
        super().__init__(
            f"Pushgateway {url} refused the request (HTTP {status}): {detail}. A 400 usually means "
            "labels inconsistent with metrics already pushed under another grouping key."
        )


class RemoteWriteError(PrometheusError):
    """The remote-write receiver refused the samples (HTTP 4xx): permanent."""

    def __init__(self, url: str, status: int, detail: str) -> None:
        self.url = url
        self.status = status
        self.detail = detail
        super().__init__(
            f"remote write to {url} refused (HTTP {status}): {detail}. Future-timestamped samples "
            "need a Prometheus with --web.enable-remote-write-receiver and "
            "storage.tsdb.out_of_order_time_window set; 'out of bounds' means it has neither."
        )


class IngestionError(PrometheusError):
    """The query worked but its result cannot become a forecasting panel."""


class NoSeriesError(IngestionError):
    """The query returned no series at all over the range."""

    def __init__(self, query: str, start: int, end: int, step: int) -> None:
        self.query = query
        self.start = start
        self.end = end
        self.step = step
        super().__init__(
            f"the query {query!r} returned no series over {_span(start, end, step)}. Run it in the "
            "Prometheus UI over that range: check the metric name, the label matchers and that the "
            "lookback is not older than Prometheus' retention."
        )


class InsufficientHistoryError(IngestionError):
    """No series has enough non-missing points to train or predict."""

    def __init__(self, query: str, n_series: int, points_found: int, points_needed: int) -> None:
        self.query = query
        self.n_series = n_series
        self.points_found = points_found
        """The most non-missing points any one series has."""
        self.points_needed = points_needed
        super().__init__(
            f"the query {query!r} returned {n_series} series but the longest has only {points_found} "
            f"points; {points_needed} are needed. Lengthen the lookback, use a shorter step, or wait "
            "for more history."
        )


class TooManySeriesError(IngestionError):
    """The query grouped into more series than the task allows."""

    def __init__(self, query: str, found: int, cap: int, group_by: list[str]) -> None:
        self.query = query
        self.found = found
        self.cap = cap
        self.group_by = list(group_by)
        super().__init__(
            f"the query {query!r} grouped by {self.group_by} gives {found} series, over the cap of "
            f"{cap}. Group by fewer labels, aggregate in PromQL (sum by (...)), narrow the label "
            "matchers, or raise limits.maxSeries (and spread the series over shards with "
            "spec.parallelism, about 5,000-10,000 per shard)."
        )


class DuplicateSeriesError(IngestionError):
    """Two series of the query end up with the same identity after grouping, or one series' labels
    collide once written back (bad input). ``count`` is how many series share the identity (1: the
    collision is within one series' labels)."""

    def __init__(
        self, query: str, key: Mapping[str, str], count: int, group_by: Sequence[str], why: str
    ) -> None:
        self.query = query
        self.key = dict(key)
        self.count = count
        self.group_by = list(group_by)
        if count < 2:
            super().__init__(
                f"the series {series_text(self.key)} of the query {query!r} cannot be written back as one "
                f"series: {why}"
            )
            return
        super().__init__(
            f"{count} series of the query {query!r} are the same series after grouping by "
            f"{self.group_by or 'all their labels'}: {series_text(self.key)} ({why}). Add the label that "
            "tells them apart to source.groupBy, choose an aggregation (sum, max, mean) to merge them, or "
            "select one of them in the query"
        )
