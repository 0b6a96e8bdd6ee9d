"""Sharded reads against a real Prometheus: the shards' panels together are the single run's panel.

For representative queries (a plain selector grouped client-side, an aggregation, joins with
partners that lack the groupBy labels, label_replace writing the groupBy label, a counter's rate,
whole label sets, one global series) a plan into 3 shards is made, each shard reads its series
with :class:`ShardReader` under a small sample budget and ingests them with the single run's
:func:`ingest`; the union must equal the unsharded ingest exactly: same series, same values,
same covariates and capacities. Label values include quotes, backslashes, regex metacharacters,
``$`` and Chinese, and one series has no ``user`` label.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest
import requests
from foresight.forecast.ingest import QueryCapacity, ingest
from foresight.forecast.shard_plan import list_series, make_plan
from foresight.forecast.shard_read import ShardReader
from foresight.prometheus import PrometheusClient, RetryPolicy
from foresight.prometheus.read_budget import ReadBudget
from foresight.timeseries import Panel

from tests.integration.prometheus import shard_history as h
from tests.servers.prometheus import PrometheusServer, backfill

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(
    prometheus_installed: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusServer]:
    data = tmp_path_factory.mktemp("shards") / "data"
    backfill(h.history_text(), data)
    with PrometheusServer(data) as prom:
        yield prom


@pytest.fixture
def client(server: PrometheusServer) -> PrometheusClient:
    return PrometheusClient(server.url, retry=RetryPolicy(attempts=1))


CASES: list[tuple[str, list[str], Any, dict[str, str], str | None]] = [
    ("storage_used_bytes", ["user"], "sum", {}, None),
    ("sum by (user, cluster) (storage_used_bytes)", ["user", "cluster"], "sum",
     {"quota": "storage_quota_bytes"}, "storage_quota_bytes"),
    ("storage_used_bytes / on(user, cluster) group_left storage_quota_bytes",
     ["user", "cluster", "storage_type"], "none", {}, None),
    ("storage_used_bytes / on(cluster) group_left cluster_capacity_bytes", ["user", "storage_type"], "max",
     {}, None),
    ('label_replace(storage_used_bytes, "owner", "$1", "user", "(.*)")', ["owner"], "sum", {}, None),
    ('sum by (user) (rate(writes_total{cluster=~"a|b"}[2h]))', ["user"], "sum",
     {"used": "sum by (user) (storage_used_bytes)"}, None),
    ("storage_used_bytes", [], "none", {}, None),
    ("sum by (cluster) (storage_used_bytes)", [], "sum", {}, None),
]  # fmt: skip


def by_key(panel: Panel) -> np.ndarray:
    return np.array(sorted(range(panel.n_series), key=lambda i: sorted(panel.keys[i].items())), dtype=int)


def union(panels: list[Panel]) -> Panel:
    keys = [k for p in panels for k in p.keys]
    order = sorted(range(len(keys)), key=lambda i: sorted(keys[i].items()))
    caps = [p.capacity for p in panels]
    return Panel(
        start=panels[0].start,
        step=panels[0].step,
        keys=[keys[i] for i in order],
        values=np.vstack([p.values for p in panels])[order],
        covariates={c: np.vstack([p.covariates[c] for p in panels])[order] for c in panels[0].covariates},
        capacity=None if caps[0] is None else np.concatenate(caps)[order],  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(("query", "group_by", "aggregate", "covariates", "capacity"), CASES)
def test_the_shards_together_read_exactly_what_one_run_reads(
    client: PrometheusClient,
    query: str,
    group_by: list[str],
    aggregate: Any,
    covariates: dict[str, str],
    capacity: str | None,
) -> None:
    kw: dict[str, Any] = {
        "start": h.START, "end": h.END, "step": h.STEP, "group_by": group_by, "aggregate": aggregate,
        "covariates": covariates, "capacity": QueryCapacity(capacity) if capacity else None,
        "max_series": 10_000,
    }  # fmt: skip
    single = ingest(client, query, **kw)
    listing = list_series(client, query, start=h.START, end=h.END, step=h.STEP, group_by=group_by,
                          aggregate=aggregate)  # fmt: skip
    full_keys = [tuple(sorted(k.items())) for k in single.panel.keys]
    listed = [tuple(sorted(p.labels.items())) for p in listing.series]
    if listing.method == "subquery":
        assert sorted(listed) == sorted(full_keys)  # exactly the series a run forecasts
    else:
        assert set(listed) >= set(full_keys)  # the index may list a series with no grid sample
    assert sum(p.weight for p in listing.series) >= single.raw_series
    exact = list_series(client, query, start=h.START, end=h.END, step=h.STEP, group_by=group_by,
                        aggregate=aggregate, exact=True)  # fmt: skip
    assert sorted(tuple(sorted(p.labels.items())) for p in exact.series) == sorted(full_keys)

    plan = make_plan(listing, run_id="r", parallelism=3, query=query, group_by=group_by, aggregate=aggregate,
                     created_at=time.time())  # fmt: skip
    budget = ReadBudget(samples_per_query=400, max_matcher_chars=60, concurrency=2)
    panels, raw = [], 0
    for part in plan.shards:
        if not part:
            continue
        reader = ShardReader(client, part, group_by=group_by, aggregate=aggregate, budget=budget)
        result = ingest(reader, query, **kw)
        panels.append(result.panel)
        raw += result.raw_series
        assert reader.stats.max_samples_per_query <= budget.samples_per_query
        assert reader.stats.over_budget_queries == 0 and reader.stats.dropped_series == 0
    together = union(panels)
    want = single.panel.select(by_key(single.panel))
    assert together.keys == want.keys
    assert np.array_equal(together.values, want.values, equal_nan=True)
    assert together.covariates.keys() == want.covariates.keys()
    for name in want.covariates:
        assert np.array_equal(together.covariates[name], want.covariates[name], equal_nan=True)
    if want.capacity is None:
        assert together.capacity is None
    else:
        assert together.capacity is not None
        assert np.array_equal(together.capacity, want.capacity, equal_nan=True)
    assert raw == single.raw_series
    assert len(want.keys) > 0


def test_a_small_budget_forces_several_chunked_queries(client: PrometheusClient) -> None:
    listing = list_series(
        client, "storage_used_bytes", start=h.START, end=h.END, step=h.STEP, group_by=["user"]
    )
    plan = make_plan(listing, run_id="r", parallelism=1, query="storage_used_bytes", group_by=["user"],
                     aggregate="sum", created_at=0)  # fmt: skip
    budget = ReadBudget(samples_per_query=100, concurrency=3)
    reader = ShardReader(client, plan.shards[0], group_by=["user"], aggregate="sum", budget=budget)
    got = reader.query_range("storage_used_bytes", h.START, h.END, h.STEP)
    direct = client.query_range("storage_used_bytes", h.START, h.END, h.STEP)
    # Every sample once: nothing lost or doubled at the chunk edges.
    assert reader.stats.samples == sum(len(s.timestamps) for s in direct)
    assert {tuple(sorted(s.labels.items())): s.values.tolist() for s in got} == {
        tuple(sorted(s.labels.items())): s.values.tolist() for s in direct
    }
    heaviest = max(p.weight for p in plan.shards[0])  # raw series of one user
    assert reader.stats.max_samples_per_query <= 100
    assert reader.stats.max_points_per_series <= 100 // heaviest
    assert reader.stats.queries >= len(direct) * h.HOURS // 100  # the range was cut into many chunks


def test_queries_are_listed_the_cheapest_way_that_is_safe(client: PrometheusClient) -> None:
    kw: dict[str, Any] = {"start": h.START, "end": h.END, "step": h.STEP}
    plain = list_series(client, "storage_used_bytes", group_by=["user"], **kw)
    assert plain.method == "series-api" and plain.queries == 1
    agg = list_series(
        client, 'sum by (user) (rate(storage_used_bytes{cluster="a"}[1h]))', group_by=["user"], **kw
    )
    assert agg.method == "series-api-selector" and agg.queries == 1
    # Weights are the selector's series behind each key (what a read of it loads).
    by_user = {p.labels["user"]: p.weight for p in agg.series}
    raw = client.query_range('storage_used_bytes{cluster="a"}', h.START, h.END, h.STEP)
    assert by_user == {u: sum(1 for s in raw if s.labels.get("user", "") == u) for u in by_user}
    joined = "storage_used_bytes / on(cluster) group_left cluster_capacity_bytes"
    assert list_series(client, joined, group_by=["user"], **kw).method == "subquery"  # two selectors


def test_listing_a_large_range_in_chunks_under_the_budget(client: PrometheusClient) -> None:
    query = "sum by (user, storage_type) (storage_used_bytes)"
    kw: dict[str, Any] = {
        "start": h.START,
        "end": h.END,
        "step": h.STEP,
        "group_by": ["user", "storage_type"],
    }
    small = list_series(client, query, budget=ReadBudget(samples_per_query=500), exact=True, **kw)
    one = list_series(client, query, exact=True, **kw)
    assert small.method == one.method == "subquery"
    assert small.queries > one.queries >= 2  # the probe, then one chunk vs many
    assert [p.labels for p in small.series] == [p.labels for p in one.series]
    assert [p.weight for p in small.series] == [p.weight for p in one.series]


@pytest.fixture
def flaky(server: PrometheusServer) -> Iterator[tuple[str, list[int]]]:
    """A proxy to the real Prometheus that answers 503 to every third request."""
    seen: list[int] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with lock:
                seen.append(len(seen))
                fail = len(seen) % 3 == 0
            if fail:
                status, raw = 503, b'{"status":"error","errorType":"unavailable","error":"overloaded"}'
            else:
                resp = requests.post(server.url + self.path, data=body, timeout=30,
                                     headers={"Content-Type": self.headers["Content-Type"]})  # fmt: skip
                status, raw = resp.status_code, resp.content
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: object) -> None:
            pass

    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{proxy.server_port}", seen
    proxy.shutdown()
    proxy.server_close()
    thread.join(timeout=5)


def test_5xx_answers_are_retried_with_the_clients_backoff(
    client: PrometheusClient, flaky: tuple[str, list[int]]
) -> None:
    url, seen = flaky
    waits: list[float] = []
    retrying = PrometheusClient(url, retry=RetryPolicy(attempts=4, base_delay=0.5), sleep=waits.append)
    listing = list_series(
        client, "storage_used_bytes", start=h.START, end=h.END, step=h.STEP, group_by=["user"]
    )
    reader = ShardReader(retrying, listing.series, group_by=["user"], aggregate="sum",
                         budget=ReadBudget(samples_per_query=300, concurrency=1))  # fmt: skip
    got = reader.query_range("storage_used_bytes", h.START, h.END, h.STEP)
    direct = client.query_range("storage_used_bytes", h.START, h.END, h.STEP)
    assert {tuple(sorted(s.labels.items())): s.values.tolist() for s in got} == {
        tuple(sorted(s.labels.items())): s.values.tolist() for s in direct
    }
    assert len(seen) == reader.stats.queries + len(waits)  # every failed answer was asked again
    assert len(waits) >= 3 and set(waits) == {0.5}  # one failure in a row each time: the first backoff
