"""The ABExperiment controller's Prometheus reads against a real Prometheus scraping a live exporter.

An in-process exporter serves the classifier's experiment counters (:mod:`foresight.experiment.counters`:
requests by status and variant, latency count / sum / sum of squares, feedback by correctness)
the way the serving pods export them; Prometheus scrapes it every second with a ``namespace``
label, as Kubernetes service discovery would add. The controller's reader
(:func:`foresight_operator.handlers.abexperiment.observe.read_observation`, the real HTTP client)
must get back what was counted per variant: the trials, successes, sums and squares that the
statistics need, the traffic per variant; a guard whose matcher is an invalid regular expression
is a ``PromQLError`` condition carrying Prometheus' message and the query; another namespace's
selector reads no data (the decision policy's "no data", not an error).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import pytest
import requests
from foresight.api.abexperiment import ABExperimentSpec
from foresight.experiment import counters
from foresight.experiment.spec import metric_sources, selector_matchers
from foresight_operator.handlers.abexperiment.observe import prometheus_http, read_observation
from foresight_operator.reconcile import WaitError
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from tests.servers.prometheus import free_port

pytestmark = pytest.mark.integration

SPEC = {
    "service": "photo-classifier",
    "variants": [
        {"name": "control", "modelVersion": "v1", "weight": 50},
        {"name": "candidate", "modelVersion": "v2", "weight": 50},
    ],
    "primaryMetric": {"name": "accuracy", "builtin": "accuracy"},
    "guardMetrics": [
        {"name": "errors", "builtin": "errorRate", "max": 0.05},
        {"name": "latency", "builtin": "latency", "margin": 0.2},
        {"name": "latency-buckets", "histogram": {"name": counters.REQUEST_SECONDS,
                                                 "matchers": [{"label": "endpoint", "value": "classify"}]},
         "goal": "minimize", "margin": 0.2},
    ],
}  # fmt: skip
COUNTS = {
    # variant: (ok requests, 5xx, latencies, correct feedback, wrong feedback)
    "control": (40, 2, [0.05, 0.07, 0.09], 30, 10),
    "candidate": (20, 5, [0.2, 0.4], 10, 6),
}


class Meters(NamedTuple):
    requests: Counter
    seconds: Histogram
    squares: Counter
    feedback: Counter


def _exporter() -> tuple[int, Meters]:
    registry = CollectorRegistry()
    requests = Counter(
        "foresight_classifier_requests", "", ["endpoint", "status", "variant"], registry=registry
    )
    seconds = Histogram(
        counters.REQUEST_SECONDS,
        "",
        ["endpoint", "variant"],
        buckets=counters.LATENCY_BUCKETS,
        registry=registry,
    )
    squares = Counter(
        "foresight_classifier_request_seconds_squared", "", ["endpoint", "variant"], registry=registry
    )
    feedback = Counter("foresight_classifier_feedback", "", ["variant", "correct"], registry=registry)
    # Every series exists from the start at 0 (the contract): increase() then counts from 0.
    for variant in COUNTS:
        for status in ("200", "502"):
            requests.labels("classify", status, variant)
        seconds.labels("classify", variant)
        squares.labels("classify", variant)
        for correct in ("true", "false"):
            feedback.labels(variant, correct)
    requests.labels("health", "200", "")  # outside any experiment: no variant
    port = free_port()
    start_http_server(port, addr="127.0.0.1", registry=registry)
    return port, Meters(requests, seconds, squares, feedback)


def _count(meters: Meters) -> None:
    requests, seconds, squares, feedback = meters
    for variant, (ok, errors, latencies, correct, wrong) in COUNTS.items():
        requests.labels("classify", "200", variant).inc(ok)
        requests.labels("classify", "502", variant).inc(errors)
        for value in latencies:
            seconds.labels("classify", variant).observe(value)
            squares.labels("classify", variant).inc(value * value)
        feedback.labels(variant, "true").inc(correct)
        feedback.labels(variant, "false").inc(wrong)
    requests.labels("health", "200", "").inc(100)


def _scraped(url: str, value: float, timeout: float = 30) -> None:
    """Wait until Prometheus holds the control's correct-feedback counter at ``value``."""
    query = 'foresight_classifier_feedback_total{variant="control", correct="true"}'
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = requests.get(f"{url}/api/v1/query", params={"query": query}, timeout=5).json()["data"][
            "result"
        ]
        if result and float(result[0]["value"][1]) == value:
            return
        time.sleep(0.2)
    raise TimeoutError(f"Prometheus did not scrape {query} = {value} in {timeout}s")


def test_the_counters_come_back_per_variant_as_the_statistics_need_them(
    prometheus_factory: Callable[..., Any],
) -> None:
    port, meters = _exporter()
    target = {"targets": [f"127.0.0.1:{port}"], "labels": {"namespace": "photos"}}
    scrape = {"job_name": "classifier", "scrape_interval": "1s", "static_configs": [target]}
    prom = prometheus_factory(config={"scrape_configs": [scrape]}, scrape_interval="1s")
    started = datetime.now(tz=UTC)
    # increase() counts from the first scrape: the zeros must be scraped before anything is counted.
    _scraped(prom.url, 0.0)
    time.sleep(1.5)
    _count(meters)
    _scraped(prom.url, float(COUNTS["control"][3]))
    time.sleep(2)

    spec = ABExperimentSpec.model_validate(SPEC)
    client = prometheus_http(prom.url, None)
    now = datetime.now(tz=UTC)
    obs = read_observation(
        client,
        prom.url,
        metric_sources(spec),
        selector_matchers(spec, "photos"),
        started - timedelta(seconds=5),
        now,
    )
    for variant, (ok, errors, latencies, correct, wrong) in COUNTS.items():
        acc = obs.metrics["accuracy"][variant]
        assert (acc.successes, acc.n) == pytest.approx((correct, correct + wrong), rel=0.2)
        err = obs.metrics["errors"][variant]
        assert (err.successes, err.n) == pytest.approx((errors, ok + errors), rel=0.2)
        lat = obs.metrics["latency"][variant]
        assert lat.mean == pytest.approx(sum(latencies) / len(latencies), rel=0.01)  # a ratio: exact
        assert lat.variance == pytest.approx(
            sum((x - lat.mean) ** 2 for x in latencies) / (len(latencies) - 1), rel=0.3
        )
        hist = obs.metrics["latency-buckets"][variant]
        assert hist.n == pytest.approx(len(latencies), rel=0.2)
        assert hist.mean == pytest.approx(sum(latencies) / len(latencies), rel=0.01)
        assert obs.traffic[variant] == pytest.approx(ok + errors, rel=0.2)
    assert set(obs.traffic) == set(COUNTS)  # the unlabelled health requests are not a variant

    # Another namespace's selector: nothing, which the policy treats as "no data".
    empty = read_observation(
        client, prom.url, metric_sources(spec), selector_matchers(spec, "elsewhere"), started, now
    )
    assert empty.traffic == {} and all(not per_variant for per_variant in empty.metrics.values())

    # A matcher Prometheus cannot parse: a PromQLError condition with its message and the query.
    broken = ABExperimentSpec.model_validate(
        {**SPEC, "guardMetrics": [{"name": "bad", "rate": {
            "successes": {"metric": "foresight_classifier_requests_total",
                          "matchers": [{"label": "status", "op": "Match", "value": "5(("}]},
            "trials": {"metric": "foresight_classifier_requests_total"}}, "max": 0.1}]}
    )  # fmt: skip
    with pytest.raises(WaitError) as err:
        read_observation(
            client, prom.url, metric_sources(broken), selector_matchers(broken, "photos"), started, now
        )
    assert err.value.reason == "PromQLError"
    assert "metric bad" in err.value.message and "error parsing regexp" in err.value.message
    assert 'status=~"5(("' in err.value.message

    # Prometheus gone: PrometheusUnavailable (retried at the next tick).
    prom.stop()
    with pytest.raises(WaitError) as err:
        read_observation(
            client, prom.url, metric_sources(spec), selector_matchers(spec, "photos"), started, now
        )
    assert err.value.reason == "PrometheusUnavailable"
