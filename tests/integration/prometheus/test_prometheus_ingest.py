"""Ingestion against a real Prometheus holding a backfilled, exactly known history."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from foresight.forecast.ingest import ConstantCapacity, QueryCapacity, RatioCapacity, ingest, load_panel
from foresight.forecast.quality import inspect_panel
from foresight.prometheus import (
    DuplicateSeriesError,
    InsufficientHistoryError,
    NoSeriesError,
    PrometheusClient,
    PrometheusUnavailable,
    PromQLError,
    RetryPolicy,
    TooManySeriesError,
)
from foresight.timeseries import rfc3339

from tests.integration.prometheus import history as h
from tests.servers.prometheus import PrometheusServer, backfill, free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def history_prometheus(
    prometheus_installed: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusServer]:
    data = tmp_path_factory.mktemp("history") / "data"
    backfill(h.history_text(), data)
    server = PrometheusServer(data)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def client(history_prometheus: PrometheusServer) -> PrometheusClient:
    return PrometheusClient(history_prometheus.url, retry=RetryPolicy(attempts=1))


def nan_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a, b, equal_nan=True))


def test_group_by_user_sums_other_labels_on_a_regular_grid(client: PrometheusClient) -> None:
    result = ingest(
        client,
        "storage_used_bytes",
        start=h.START,
        end=h.END,
        step=h.STEP,
        group_by=["user"],
        aggregate="sum",
    )
    p = result.panel
    assert p.start == h.START and p.step == h.STEP and p.n_steps == h.HOURS
    assert p.keys == [{"user": "alice"}, {"user": "bob"}, {"user": "carol"}]
    alice = h.expected(("alice", "ml", "ssd", "a")) + h.expected(("alice", "ml", "hdd", "a"))
    assert nan_equal(p.values[0], alice)
    # The gap is explicit NaN, not filled and not dropped.
    assert nan_equal(p.values[1], h.expected(("bob", "ml", "ssd", "a")))
    assert np.isnan(p.values[1, list(h.GAP)]).all() and not np.isnan(p.values[1, h.GAP[0] - 1])
    # The late series is padded with NaN in front and reported with its first timestamp.
    assert np.isnan(p.values[2, : h.LATE]).all() and p.values[2, h.LATE] == 7.0 + h.LATE
    assert result.late_series == [({"user": "carol"}, h.START + h.LATE * h.STEP)]
    assert result.raw_series == 4


def test_max_and_mean_aggregate_over_extra_labels(client: PrometheusClient) -> None:
    kw = {"start": h.START, "end": h.END, "step": h.STEP, "group_by": ["group"]}
    pmax = load_panel(client, "storage_used_bytes", aggregate="max", **kw)  # type: ignore[arg-type]
    pmean = load_panel(client, "storage_used_bytes", aggregate="mean", **kw)  # type: ignore[arg-type]
    assert pmax.keys == [{"group": "infra"}, {"group": "ml"}]
    assert nan_equal(pmax.values[1], h.expected(("alice", "ml", "hdd", "a")))
    ml = [h.expected(k) for k in h.SERIES if k[1] == "ml"]
    t = h.GAP[0]  # bob missing: the mean is over the two series present
    assert pmean.values[1, 0] == pytest.approx(np.mean([r[0] for r in ml]))
    assert pmean.values[1, t] == pytest.approx((ml[0][t] + ml[1][t]) / 2)


def test_chunked_query_equals_unchunked(
    history_prometheus: PrometheusServer, client: PrometheusClient
) -> None:
    small = PrometheusClient(history_prometheus.url, max_points_per_query=25, retry=RetryPolicy(attempts=1))
    kw = {"start": h.START, "end": h.END, "step": h.STEP, "group_by": ["user", "storage_type"]}
    whole = load_panel(client, "storage_used_bytes", **kw)  # type: ignore[arg-type]
    chunked = load_panel(small, "storage_used_bytes", **kw)  # type: ignore[arg-type]
    assert chunked.keys == whole.keys
    assert nan_equal(chunked.values, whole.values)
    raw = small.query_range("storage_used_bytes", h.START, h.END, h.STEP)
    for s in raw:  # no boundary sample twice
        assert len(np.unique(s.timestamps)) == len(s.timestamps)


def test_unaligned_range_is_aligned_to_the_step(client: PrometheusClient) -> None:
    p = load_panel(
        client, "storage_used_bytes", start=h.START + 1234, end=h.END + 2000, step=h.STEP, group_by=["user"]
    )
    assert p.start == h.START and p.end == h.END
    # Aligned down: the first column is the sample at START, so alice's value there is exact.
    assert p.values[0, 1] == 1100.0 + 3 * 1


def test_counter_reset_becomes_a_per_step_increase(client: PrometheusClient) -> None:
    p = load_panel(
        client, "writes_total", start=h.START, end=h.END, step=h.STEP, group_by=["user"], counter=True
    )
    inc = p.values[0]
    assert np.isnan(inc[0])
    assert inc[h.RESET] == 5.0  # the counter restarted from 0 and counted 5
    others = np.delete(inc[1:], h.RESET - 1)
    assert (others == 10.0).all()


def test_capacity_from_a_query_matched_by_group_labels(client: PrometheusClient) -> None:
    result = ingest(
        client,
        "storage_used_bytes",
        start=h.START,
        end=h.END,
        step=h.STEP,
        group_by=["user"],
        capacity=QueryCapacity("storage_quota_bytes", ratio=0.5),
    )
    cap = result.panel.capacity
    assert cap is not None
    assert cap[0] == 2500.0 and cap[1] == 400.0 and np.isnan(cap[2])
    # The quality check names the series without a capacity (ingestion's notes are about queries).
    _, quality = inspect_panel(result, threshold=True)
    assert any("capacity" in w and "user=carol (missing)" in w for w in quality.warnings)
    const = load_panel(
        client,
        "storage_used_bytes",
        start=h.START,
        end=h.END,
        step=h.STEP,
        group_by=["user"],
        capacity=RatioCapacity(1000.0, 0.9),
    )
    assert const.capacity is not None and (const.capacity == 900.0).all()
    c2 = load_panel(
        client, "storage_used_bytes", start=h.START, end=h.END, step=h.STEP, capacity=ConstantCapacity(7.0)
    )
    assert c2.keys == [{}] and c2.capacity is not None and c2.capacity[0] == 7.0


def test_covariates_are_aligned_to_the_panel_series(client: PrometheusClient) -> None:
    p = load_panel(
        client,
        "storage_used_bytes",
        start=h.START,
        end=h.END,
        step=h.STEP,
        group_by=["user"],
        covariates={"writes": "rate(writes_total[2h]) * 3600"},
    )
    w = p.covariates["writes"]
    assert w.shape == p.values.shape
    assert np.isfinite(w[0, 5]) and np.isnan(w[1]).all() and np.isnan(w[2]).all()


def test_promql_syntax_error_carries_prometheus_message(client: PrometheusClient) -> None:
    with pytest.raises(PromQLError) as ei:
        load_panel(client, "sum(storage_used_bytes", start=h.START, end=h.END, step=h.STEP)
    assert ei.value.query == "sum(storage_used_bytes"
    assert "parse error" in ei.value.message
    assert not ei.value.temporary


def test_no_series_names_the_query_and_range(client: PrometheusClient) -> None:
    with pytest.raises(NoSeriesError) as ei:
        load_panel(client, 'storage_used_bytes{user="nobody"}', start=h.START, end=h.END, step=h.STEP)
    msg = str(ei.value)
    # The range in RFC 3339, as every time in a message (never raw epoch seconds).
    assert 'user="nobody"' in msg and rfc3339(h.START) in msg and rfc3339(h.END) in msg
    assert str(h.START) not in msg


def test_too_little_history_reports_the_counts(client: PrometheusClient) -> None:
    with pytest.raises(InsufficientHistoryError) as ei:
        load_panel(
            client,
            "storage_used_bytes",
            start=h.START,
            end=h.END,
            step=h.STEP,
            group_by=["user"],
            min_history_points=1000,
        )
    e = ei.value
    assert (e.n_series, e.points_found, e.points_needed) == (3, h.HOURS, 1000)
    assert f"only {h.HOURS} points" in str(e) and "1000" in str(e)
    # Short series are dropped and reported when others have enough history.
    r = ingest(
        client,
        "storage_used_bytes",
        start=h.START,
        end=h.END,
        step=h.STEP,
        group_by=["user"],
        min_history_points=h.HOURS - 10,
    )
    assert [k["user"] for k in r.panel.keys] == ["alice", "bob"]
    assert r.short_series == [({"user": "carol"}, h.HOURS - h.LATE)]


def test_too_many_series_reports_the_cap(client: PrometheusClient) -> None:
    with pytest.raises(TooManySeriesError) as ei:
        load_panel(
            client,
            "storage_used_bytes",
            start=h.START,
            end=h.END,
            step=h.STEP,
            group_by=["user", "storage_type"],
            max_series=2,
        )
    assert (ei.value.found, ei.value.cap) == (4, 2)
    assert ("cap of 2" in str(ei.value) and "groupBy" not in str(ei.value)) or "Group by" in str(ei.value)


def test_aggregate_none_refuses_ambiguous_groups(client: PrometheusClient) -> None:
    with pytest.raises(DuplicateSeriesError, match="share the groupBy labels"):
        load_panel(
            client,
            "storage_used_bytes",
            start=h.START,
            end=h.END,
            step=h.STEP,
            group_by=["user"],
            aggregate="none",
        )
    p = load_panel(client, "storage_used_bytes", start=h.START, end=h.END, step=h.STEP, aggregate="none")
    assert len(p.keys) == 4 and all("__name__" not in k and "cluster" in k for k in p.keys)


def test_prometheus_down_is_unavailable_after_retries() -> None:
    sleeps: list[float] = []
    client = PrometheusClient(
        f"http://127.0.0.1:{free_port()}",
        retry=RetryPolicy(attempts=3, base_delay=0.5),
        sleep=sleeps.append,
        timeout=2,
    )
    with pytest.raises(PrometheusUnavailable) as ei:
        client.query_range("up", h.START, h.END, h.STEP)
    assert ei.value.attempts == 3 and ei.value.temporary
    assert sleeps == [0.5, 1.0]
