"""The classifier service's own telemetry: the Prometheus instruments it serves at ``/metrics``.

Requests and latency per endpoint, cache hits and misses, backend calls and failures, results per
category; registered in a ``CollectorRegistry`` passed in, so tests build fresh ones.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["ClassifierMetrics"]


class ClassifierMetrics:
    """The service's Prometheus instruments, registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "foresight_classifier_requests_total",
            "HTTP requests by endpoint and status.",
            ["endpoint", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "foresight_classifier_request_seconds",
            "HTTP request latency by endpoint.",
            ["endpoint"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.cache_hits = Counter(
            "foresight_classifier_cache_hits_total",
            "Lookups answered from the cache.",
            ["endpoint"],
            registry=registry,
        )
        self.cache_misses = Counter(
            "foresight_classifier_cache_misses_total",
            "Lookups not in the cache.",
            ["endpoint"],
            registry=registry,
        )
        self.backend_calls = Counter(
            "foresight_classifier_backend_calls_total",
            "Backend (LLM / model) classifications attempted.",
            ["backend"],
            registry=registry,
        )
        self.backend_failures = Counter(
            "foresight_classifier_backend_failures_total",
            "Backend classifications that failed after retries.",
            ["backend"],
            registry=registry,
        )
        self.classifications = Counter(
            "foresight_classifier_classifications_total",
            "Results returned by category (cached or not).",
            ["category"],
            registry=registry,
        )
