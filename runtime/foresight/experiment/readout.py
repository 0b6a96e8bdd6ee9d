"""From Prometheus answers to an :class:`~.state.Observation`: which queries to ask, and what they mean.

One analysis asks, for every metric and guard, one instant query per counter part (``trials``,
``successes``; ``count``, ``total``, ``total_sq``; ``buckets``, ``total``) plus the classify
requests per variant (the traffic the ratio check compares), each ``sum by (variant)
(increase(...[window]))`` over the window since the experiment started (:mod:`.counters`). The
answers come back as (labels, value) samples; :func:`observation` folds them into the aggregates
the decision policy reads. Pure: the caller does the HTTP (the operator with
:class:`foresight.prometheus.client.PrometheusClient`, tests with anything).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .counters import (
    TRAFFIC,
    VARIANT_LABEL,
    HistogramSource,
    Matcher,
    MetricSource,
    traffic_from_vector,
    window,
)
from .state import Observation

__all__ = ["TRAFFIC_METRIC", "PlannedQuery", "observation", "plan_queries", "vector"]

TRAFFIC_METRIC = "__traffic__"
"""The planned query of the classify requests per variant (not a metric name users can give)."""


@dataclass(frozen=True)
class PlannedQuery:
    metric: str  # a metric's or guard's name, or TRAFFIC_METRIC
    part: str  # the counter part: trials, successes, count, total, total_sq, buckets, requests
    promql: str


def plan_queries(
    sources: Mapping[str, MetricSource], selector: tuple[Matcher, ...], seconds: float
) -> list[PlannedQuery]:
    """Every query of one analysis over the last ``seconds`` (``selector`` picks the service's series)."""
    out = [
        PlannedQuery(metric, part, promql)
        for metric, source in sources.items()
        for part, promql in source.queries(seconds, selector).items()
    ]
    out.append(PlannedQuery(TRAFFIC_METRIC, "requests", TRAFFIC.increase(window(seconds), selector)))
    return out


def vector(samples: Iterable[tuple[Mapping[str, str], float]], *, buckets: bool = False) -> dict[str, float]:
    """One query's samples keyed by variant (``"<variant>|<le>"`` for histogram buckets).

    Samples without a variant label (requests outside any experiment) and NaN values are dropped.
    """
    out: dict[str, float] = {}
    for labels, value in samples:
        variant = labels.get(VARIANT_LABEL, "")
        if not variant or math.isnan(value):
            continue
        key = HistogramSource.bucket_key(variant, labels.get("le", "+Inf")) if buckets else variant
        out[key] = out.get(key, 0.0) + value
    return out


def observation(
    sources: Mapping[str, MetricSource], answers: Mapping[tuple[str, str], Mapping[str, float]]
) -> Observation:
    """The aggregates per metric and variant from ``answers[(metric, part)]`` (see :func:`vector`)."""
    metrics = {}
    for name, source in sources.items():
        parts = {part: answers.get((m, part), {}) for (m, part) in answers if m == name}
        aggregates = source.aggregates(parts)
        metrics[name] = dict(aggregates.items())
    traffic = traffic_from_vector(answers.get((TRAFFIC_METRIC, "requests"), {}))
    return Observation(metrics=metrics, traffic=traffic)
