"""Aggregates from counters (moments, histograms, windows) and the PromQL of the metric contract."""

from __future__ import annotations

import numpy as np
import pytest
from foresight.experiment import counters
from foresight.experiment.aggregates import Moments, Proportion, delta, moments_from_histogram


def test_moments_from_sums_equal_numpy_mean_and_sample_variance() -> None:
    x = np.random.default_rng(3).lognormal(-3, 0.6, 5000)
    m = Moments(count=x.size, total=x.sum(), total_sq=(x * x).sum())
    assert m.n == 5000
    assert m.mean == pytest.approx(x.mean(), rel=1e-12)
    assert m.variance == pytest.approx(x.var(ddof=1), rel=1e-9)


def test_proportion_mean_and_bernoulli_variance() -> None:
    p = Proportion(successes=30, trials=120)
    assert (p.n, p.mean, p.variance) == (120, 0.25, pytest.approx(0.1875))
    assert Proportion(successes=0, trials=0).mean == 0.0


def test_histogram_moments_use_exact_sum_and_approximate_variance() -> None:
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 1, 20000)
    bounds = [0.1 * i for i in range(1, 11)] + [float("inf")]
    cumulative = [float((x <= b).sum()) for b in bounds]
    m = moments_from_histogram(bounds, cumulative, total=float(x.sum()))
    assert m.count == 20000
    assert m.mean == pytest.approx(x.mean(), rel=1e-12)
    # Midpoints of 0.1-wide buckets lose 0.1²/12 of variance: within 2% of the true 1/12.
    assert m.variance == pytest.approx(x.var(ddof=1), rel=0.02)


def test_histogram_with_mismatched_lengths_says_what_to_pass() -> None:
    with pytest.raises(ValueError, match="one cumulative count per `le` bound"):
        moments_from_histogram([0.1, 1.0], [3.0])


def test_delta_is_the_window_between_snapshots_and_survives_counter_loss() -> None:
    before, now = Proportion(successes=80, trials=100), Proportion(successes=170, trials=220)
    assert delta(now, before) == Proportion(successes=90, trials=120)
    assert delta(now, None) == now
    # Jitter (a little less than before): empty window, not negative counts.
    assert delta(Proportion(successes=79, trials=99.6), before).trials == 0
    # A big loss (Prometheus lost data): take what is there.
    assert delta(Proportion(successes=5, trials=10), before).trials == 10
    m = delta(Moments(count=10, total=2.0, total_sq=0.5), Moments(count=4, total=0.5, total_sq=0.1))
    assert (m.count, m.total, m.total_sq) == (6, 1.5, pytest.approx(0.4))
    with pytest.raises(TypeError, match="changed its kind"):
        delta(now, Moments(count=1, total=1, total_sq=1))


def test_rate_source_promql_sums_increase_by_variant_with_service_selector() -> None:
    q = counters.ACCURACY.queries(3600.2, {"namespace": "ml", "job": 'cls"x'})
    assert q == {
        "successes": 'sum by (variant) (increase(foresight_classifier_feedback_total{correct="true", '
        'namespace="ml", job="cls\\"x"}[3601s]))',
        "trials": 'sum by (variant) (increase(foresight_classifier_feedback_total{namespace="ml", '
        'job="cls\\"x"}[3601s]))',
    }
    err = counters.ERROR_RATE.queries(300)
    assert err["successes"] == (
        "sum by (variant) (increase(foresight_classifier_requests_total"
        '{endpoint="classify", status=~"5.."}[300s]))'
    )


def test_latency_sources_read_sum_count_and_squares_or_buckets() -> None:
    q = counters.LATENCY.queries(60)
    assert q["count"].startswith("sum by (variant) (increase(foresight_classifier_request_seconds_count{")
    assert "foresight_classifier_request_seconds_squared_total" in q["total_sq"]
    hq = counters.LATENCY_FROM_BUCKETS.queries(60)
    assert hq["buckets"].startswith(
        "sum by (variant, le) (increase(foresight_classifier_request_seconds_bucket{"
    )
    with pytest.raises(ValueError, match="positive number of seconds"):
        counters.LATENCY.queries(0)


def test_rate_aggregates_read_missing_successes_as_zero_and_drop_unlabelled() -> None:
    out = counters.ERROR_RATE.aggregates(
        {"trials": {"control": 1000.0, "candidate": 120.0, "": 50.0}, "successes": {"candidate": 3.0}}
    )
    assert out == {
        "control": Proportion(successes=0, trials=1000),
        "candidate": Proportion(successes=3, trials=120),
    }


def test_moments_and_histogram_aggregates_from_vectors() -> None:
    m = counters.LATENCY.aggregates({"count": {"a": 4.0}, "total": {"a": 0.4}, "total_sq": {"a": 0.05}})
    assert m["a"].mean == pytest.approx(0.1)
    key = counters.HistogramSource.bucket_key
    h = counters.LATENCY_FROM_BUCKETS.aggregates(
        {"buckets": {key("a", "0.1"): 2.0, key("a", "0.2"): 4.0, key("a", "+Inf"): 4.0}, "total": {"a": 0.5}}
    )
    assert h["a"].count == 4 and h["a"].mean == pytest.approx(0.125)


def test_traffic_vector_drops_requests_outside_experiments() -> None:
    assert counters.traffic_from_vector({"control": 10.0, "": 99.0, "b": float("nan")}) == {"control": 10.0}
