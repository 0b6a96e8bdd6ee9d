"""Prometheus I/O: the HTTP API client, Pushgateway, remote write, and their one error hierarchy.

Ingestion into a :class:`foresight.timeseries.Panel` lives in :mod:`foresight.forecast.ingest`,
write-back of a :class:`foresight.timeseries.Forecast` in :mod:`foresight.forecast.writeback`.
"""

from .client import InstantSample, PrometheusClient, RangeSeries, RetryPolicy, align_range
from .errors import (
    DuplicateSeriesError,
    IngestionError,
    InsufficientHistoryError,
    NoSeriesError,
    PrometheusError,
    PrometheusResponseError,
    PrometheusUnavailable,
    PromQLError,
    PushgatewayError,
    PushgatewayUnavailable,
    RemoteWriteError,
    TooManySeriesError,
)

__all__ = [
    "DuplicateSeriesError",
    "IngestionError",
    "InstantSample",
    "InsufficientHistoryError",
    "NoSeriesError",
    "PromQLError",
    "PrometheusClient",
    "PrometheusError",
    "PrometheusResponseError",
    "PrometheusUnavailable",
    "PushgatewayError",
    "PushgatewayUnavailable",
    "RangeSeries",
    "RemoteWriteError",
    "RetryPolicy",
    "TooManySeriesError",
    "align_range",
]
