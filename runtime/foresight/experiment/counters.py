"""The metric contract between the serving pods and the analysis: names, labels, PromQL.

The classifier service counts; the operator reads sums from Prometheus and turns them into
:mod:`~foresight.experiment.aggregates`. Both sides import the names from here, so a rename is one
edit. Every series an experiment reads carries the ``variant`` label (the variant that served the
request). What the classifier exports for experiments:

=========================================================  =========  ==============================
series                                                     type       labels
=========================================================  =========  ==============================
``foresight_classifier_requests_total``                    counter    endpoint, status, variant
``foresight_classifier_request_seconds`` (``_bucket``,     histogram  endpoint, variant
``_sum``, ``_count``)
``foresight_classifier_request_seconds_squared_total``     counter    endpoint, variant
``foresight_classifier_feedback_total``                    counter    variant, correct
=========================================================  =========  ==============================

``…_squared_total`` is the sum of squared latencies in seconds² (a histogram has no second moment;
with it the latency variance is exact instead of estimated from buckets). ``correct`` is
``"true"`` or ``"false"``: the feedback endpoint joins late ground truth to the variant that served
the request. Requests outside an experiment carry ``variant=""``.

The serving side must create each label combination at start-up (``.labels(...)`` without
``inc()``): a counter that was never incremented has no series, and a variant with zero errors must
read as 0 errors, not as "no data". :meth:`RateSource.aggregates` still reads a missing success
count as 0 when the trials are there.

Every query is ``sum by (variant) (increase(<series>[<window>]))``: ``increase`` survives counter
resets (pod restarts) and the sum adds up the pods. The operator asks for the window since the
experiment started (cumulative aggregates) and the decision policy subtracts snapshots for the
shorter windows it needs (:func:`~foresight.experiment.aggregates.delta`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

from pydantic import Field

from ._base import Record
from .aggregates import Moments, Proportion, moments_from_histogram

__all__ = [
    "ACCURACY",
    "CLASSIFY_ENDPOINT",
    "CORRECT_LABEL",
    "ENDPOINT_LABEL",
    "ERROR_RATE",
    "FEEDBACK_TOTAL",
    "LATENCY",
    "LATENCY_BUCKETS",
    "LATENCY_FROM_BUCKETS",
    "REQUESTS_TOTAL",
    "REQUEST_SECONDS",
    "REQUEST_SECONDS_SQUARED",
    "STATUS_LABEL",
    "TRAFFIC",
    "VARIANT_LABEL",
    "HistogramSource",
    "Matcher",
    "MetricSource",
    "MomentsSource",
    "RateSource",
    "Selector",
    "promql_string",
    "traffic_from_vector",
    "window",
]

VARIANT_LABEL = "variant"
ENDPOINT_LABEL = "endpoint"
STATUS_LABEL = "status"
CORRECT_LABEL = "correct"

REQUESTS_TOTAL = "foresight_classifier_requests_total"
REQUEST_SECONDS = "foresight_classifier_request_seconds"
REQUEST_SECONDS_SQUARED = "foresight_classifier_request_seconds_squared_total"
FEEDBACK_TOTAL = "foresight_classifier_feedback_total"

#: The latency histogram's buckets (seconds), as the classifier registers them today.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

#: The endpoint whose requests are the experiment's traffic (health checks and scrapes are not).
CLASSIFY_ENDPOINT = "classify"

Op = Literal["=", "!=", "=~", "!~"]


def promql_string(value: str) -> str:
    """A PromQL string literal: double-quoted, with backslashes, quotes and newlines escaped."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def window(seconds: float) -> str:
    """A range selector duration (``[3600s]``), rounded up to whole seconds, at least 1s."""
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"a query window must be a positive number of seconds, got {seconds!r}")
    return f"{max(1, math.ceil(seconds))}s"


class Matcher(Record):
    """One label matcher: ``label op "value"``."""

    label: str = Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")
    op: Op = "="
    value: str

    def render(self) -> str:
        return f"{self.label}{self.op}{promql_string(self.value)}"


class Selector(Record):
    """A counter series: a metric name and label matchers (the ``variant`` label is grouped on)."""

    metric: str = Field(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
    matchers: tuple[Matcher, ...] = ()

    def increase(self, range_: str, extra: tuple[Matcher, ...] = (), by: tuple[str, ...] = ()) -> str:
        """``sum by (variant, *by) (increase(metric{matchers, extra}[range]))``."""
        inner = ", ".join(m.render() for m in (*self.matchers, *extra))
        labels = ", ".join((VARIANT_LABEL, *by))
        return f"sum by ({labels}) (increase({self.metric}{{{inner}}}[{range_}]))"


def _matchers(extra: Mapping[str, str] | tuple[Matcher, ...]) -> tuple[Matcher, ...]:
    if isinstance(extra, tuple):
        return extra
    return tuple(Matcher(label=k, value=v) for k, v in extra.items())


Vectors = Mapping[str, Mapping[str, float]]
"""Query results by part name, then by variant: ``{"trials": {"control": 1200.0, ...}, ...}``."""


class RateSource(Record):
    """A rate from two counters: successes and trials, per variant."""

    kind: Literal["proportion"] = "proportion"
    successes: Selector
    trials: Selector

    def queries(self, seconds: float, extra: Mapping[str, str] | tuple[Matcher, ...] = ()) -> dict[str, str]:
        """PromQL per part over the last ``seconds`` (``extra`` selects the service: namespace, job...)."""
        more, range_ = _matchers(extra), window(seconds)
        return {
            "successes": self.successes.increase(range_, more),
            "trials": self.trials.increase(range_, more),
        }

    def aggregates(self, vectors: Vectors) -> dict[str, Proportion]:
        """One :class:`Proportion` per variant that has trials (a missing success count is 0)."""
        trials = vectors.get("trials", {})
        successes = vectors.get("successes", {})
        out: dict[str, Proportion] = {}
        for variant, n in trials.items():
            if not variant or not math.isfinite(n) or n <= 0:
                continue
            s = successes.get(variant, 0.0)
            out[variant] = Proportion(successes=min(n, max(0.0, s if math.isfinite(s) else 0.0)), trials=n)
        return out


class MomentsSource(Record):
    """A continuous metric from three counters: count, sum and sum of squares, per variant."""

    kind: Literal["mean"] = "mean"
    count: Selector
    total: Selector
    total_sq: Selector

    def queries(self, seconds: float, extra: Mapping[str, str] | tuple[Matcher, ...] = ()) -> dict[str, str]:
        more, range_ = _matchers(extra), window(seconds)
        return {
            "count": self.count.increase(range_, more),
            "total": self.total.increase(range_, more),
            "total_sq": self.total_sq.increase(range_, more),
        }

    def aggregates(self, vectors: Vectors) -> dict[str, Moments]:
        count, total, total_sq = (vectors.get(k, {}) for k in ("count", "total", "total_sq"))
        out: dict[str, Moments] = {}
        for variant, n in count.items():
            if (
                not variant
                or not math.isfinite(n)
                or n <= 0
                or variant not in total
                or variant not in total_sq
            ):
                continue
            out[variant] = Moments(count=n, total=total[variant], total_sq=max(0.0, total_sq[variant]))
        return out


class HistogramSource(Record):
    """A continuous metric from a Prometheus histogram (``_bucket`` by ``le``, ``_sum``, ``_count``).

    The variance is estimated from the buckets; prefer :class:`MomentsSource` where the exporter
    also counts squares. Bucket vectors are keyed ``"<variant>|<le>"`` (see :meth:`bucket_key`).
    """

    kind: Literal["histogram"] = "histogram"
    name: str = Field(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$", description="name: the histogram's base name.")
    matchers: tuple[Matcher, ...] = ()

    @staticmethod
    def bucket_key(variant: str, le: str) -> str:
        return f"{variant}|{le}"

    def queries(self, seconds: float, extra: Mapping[str, str] | tuple[Matcher, ...] = ()) -> dict[str, str]:
        more, range_ = _matchers(extra), window(seconds)
        return {
            "buckets": Selector(metric=f"{self.name}_bucket", matchers=self.matchers).increase(
                range_, more, by=("le",)
            ),
            "total": Selector(metric=f"{self.name}_sum", matchers=self.matchers).increase(range_, more),
        }

    def aggregates(self, vectors: Vectors) -> dict[str, Moments]:
        per_variant: dict[str, list[tuple[float, float]]] = {}
        for key, value in vectors.get("buckets", {}).items():
            variant, _, le = key.partition("|")
            if variant and math.isfinite(value):
                per_variant.setdefault(variant, []).append((float(le), value))
        out: dict[str, Moments] = {}
        for variant, buckets in per_variant.items():
            bounds, counts = zip(*sorted(buckets), strict=True)
            moments = moments_from_histogram(bounds, counts, vectors.get("total", {}).get(variant))
            if moments.count > 0:
                out[variant] = moments
        return out


MetricSource = RateSource | MomentsSource | HistogramSource

_CLASSIFY = Matcher(label=ENDPOINT_LABEL, value=CLASSIFY_ENDPOINT)

#: Requests routed to each variant: the traffic the sample-ratio-mismatch check compares.
TRAFFIC = Selector(metric=REQUESTS_TOTAL, matchers=(_CLASSIFY,))

#: Accuracy from the feedback endpoint: correct answers out of all answers with feedback.
ACCURACY = RateSource(
    successes=Selector(metric=FEEDBACK_TOTAL, matchers=(Matcher(label=CORRECT_LABEL, value="true"),)),
    trials=Selector(metric=FEEDBACK_TOTAL),
)

#: Server errors (5xx) out of all classify requests.
ERROR_RATE = RateSource(
    successes=Selector(
        metric=REQUESTS_TOTAL, matchers=(_CLASSIFY, Matcher(label=STATUS_LABEL, op="=~", value="5.."))
    ),
    trials=TRAFFIC,
)

#: Classify latency in seconds from the exact moments (count, sum, sum of squares).
LATENCY = MomentsSource(
    count=Selector(metric=f"{REQUEST_SECONDS}_count", matchers=(_CLASSIFY,)),
    total=Selector(metric=f"{REQUEST_SECONDS}_sum", matchers=(_CLASSIFY,)),
    total_sq=Selector(metric=REQUEST_SECONDS_SQUARED, matchers=(_CLASSIFY,)),
)

#: Classify latency from the histogram alone (approximate variance), for exporters without squares.
LATENCY_FROM_BUCKETS = HistogramSource(name=REQUEST_SECONDS, matchers=(_CLASSIFY,))


def traffic_from_vector(vector: Mapping[str, float]) -> dict[str, float]:
    """Requests per variant from the :data:`TRAFFIC` query's result (unlabelled series dropped)."""
    return {v: max(0.0, n) for v, n in vector.items() if v and math.isfinite(n)}
