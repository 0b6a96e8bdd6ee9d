"""The classifier service's own telemetry: the Prometheus instruments it serves at ``/metrics``.

Registered in a ``CollectorRegistry`` passed in, so tests build fresh ones. The names and labels
the A/B analysis reads are the experiment package's metric contract
(:mod:`foresight.experiment.counters`): every request series carries ``variant`` (``""`` outside
experiments). The instruments are only ever changed by :class:`..accounting.Ledger`, from the
same events as ``/stats/today`` (see :mod:`..accounting` for what each one counts).
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from foresight.experiment.counters import (
    FEEDBACK_TOTAL,
    LATENCY_BUCKETS,
    REQUEST_SECONDS,
    REQUEST_SECONDS_SQUARED,
    REQUESTS_TOTAL,
)

__all__ = ["API_ENDPOINTS", "ClassifierMetrics"]

API_ENDPOINTS = ("classify", "check-cache")
"""The endpoints whose requests are classifications (the ``requests`` of ``/stats/today``)."""


class ClassifierMetrics:
    """The service's Prometheus instruments, registered in ``registry``."""

    # long: one declaration per instrument, read top to bottom as the list of what /metrics serves
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            REQUESTS_TOTAL,
            "HTTP requests by endpoint, status and the variant that served them.",
            ["endpoint", "status", "variant"],
            registry=registry,
        )
        self.latency = Histogram(
            REQUEST_SECONDS,
            "HTTP request latency by endpoint and variant.",
            ["endpoint", "variant"],
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        self.latency_squared = Counter(
            REQUEST_SECONDS_SQUARED.removesuffix("_total"),
            "Sum of squared request latencies (seconds squared), for the exact latency variance.",
            ["endpoint", "variant"],
            registry=registry,
        )
        self.cache_hits = Counter(
            "foresight_classifier_cache_hits",
            "Requests answered from the cache.",
            ["endpoint", "variant"],
            registry=registry,
        )
        self.cache_misses = Counter(
            "foresight_classifier_cache_misses",
            "classify: requests for an image not in the cache; check-cache: hashes not found.",
            ["endpoint", "variant"],
            registry=registry,
        )
        self.coalesced = Counter(
            "foresight_classifier_coalesced_requests",
            "classify requests that waited for another request's backend call for the same image.",
            ["variant"],
            registry=registry,
        )
        self.uncertain = Counter(
            "foresight_classifier_uncertain_answers",
            "classify answers that named no category or several (low confidence, not cached).",
            ["variant"],
            registry=registry,
        )
        self.backend_calls = Counter(
            "foresight_classifier_backend_calls",
            "Backend (LLM / model) calls attempted, retries included.",
            ["backend", "variant"],
            registry=registry,
        )
        self.backend_billed = Counter(
            "foresight_classifier_backend_calls_billed",
            "Backend calls the upstream answered (what it bills).",
            ["backend", "variant"],
            registry=registry,
        )
        self.backend_failures = Counter(
            "foresight_classifier_backend_failures",
            "classify requests that failed because the backend did (after its retries or the deadline).",
            ["backend", "variant"],
            registry=registry,
        )
        self.calls_saved = Counter(
            "foresight_classifier_calls_saved",
            "Backend calls not made: cache hits and coalesced requests.",
            ["variant"],
            registry=registry,
        )
        self.cost_spent = Counter(
            "foresight_classifier_cost_spent",
            "Estimated cost of the billed backend calls (price per call times billed calls).",
            ["variant"],
            registry=registry,
        )
        self.cost_saved = Counter(
            "foresight_classifier_cost_saved",
            "Estimated cost of the backend calls not made (price per call times calls saved).",
            ["variant"],
            registry=registry,
        )
        self.classifications = Counter(
            "foresight_classifier_classifications",
            "Answers served by category (cached or not, low-confidence ones included).",
            ["category", "variant"],
            registry=registry,
        )
        self.feedback = Counter(
            FEEDBACK_TOTAL.removesuffix("_total"),
            "Feedback received (the true category of an earlier request), by whether the answer was right.",
            ["variant", "correct"],
            registry=registry,
        )
        self.variant_weight = Gauge(
            "foresight_classifier_variant_weight",
            "The share of requests (percent) this pod routes to each variant under the routing it applies.",
            ["variant"],
            registry=registry,
            multiprocess_mode="mostrecent",
        )

    def start(self, variants: Sequence[tuple[str, str]]) -> None:
        """Create every series of ``(variant, backend)``: a counter never incremented has no series, and
        a variant with no errors must read 0 errors, not "no data"."""
        for variant, backend in variants:
            for endpoint in API_ENDPOINTS:
                self.requests.labels(endpoint, "200", variant)
                self.requests.labels(endpoint, "502", variant)
                self.latency.labels(endpoint, variant)
                self.latency_squared.labels(endpoint, variant)
                self.cache_hits.labels(endpoint, variant)
                self.cache_misses.labels(endpoint, variant)
            for counter in (self.backend_calls, self.backend_billed, self.backend_failures):
                counter.labels(backend, variant)
            for plain in (self.coalesced, self.uncertain, self.calls_saved, self.cost_spent, self.cost_saved):
                plain.labels(variant)
            self.feedback.labels(variant, "true")
            self.feedback.labels(variant, "false")
