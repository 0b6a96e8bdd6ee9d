"""The shard reader's own logic against a recording stand-in client: chunking, stitching, the
guard against other shards' series, re-sizing and counting. (Against a real Prometheus:
tests/integration/prometheus/test_shard_read.py.)"""

from __future__ import annotations

import re

import numpy as np
from foresight.forecast.ingest import ingest
from foresight.forecast.shard_plan import PlannedSeries
from foresight.forecast.shard_read import ShardReader
from foresight.prometheus.client import InstantSample, PrometheusClient, RangeSeries
from foresight.prometheus.read_budget import ReadBudget

STEP = 3600
START = 1_700_002_800 - 1_700_002_800 % STEP
N = 100  # grid points


class Recording(PrometheusClient):
    """Answers range queries with ``extra_per_user`` series per user (values = hour index), for
    the users a pushed-down ``user=~"..."`` matcher selects, or all of them without one."""

    def __init__(self, users: list[str], extra_per_user: int = 1, *, obey_matchers: bool = True) -> None:
        super().__init__("http://recording.invalid")
        self.users = users
        self.extra = extra_per_user
        self.obey = obey_matchers
        self.calls: list[tuple[str, int, int]] = []

    def query_range(
        self, expr: str, start: float, end: float, step: int, *, series_hint: int | None = None
    ) -> list[RangeSeries]:
        s, e = int(start), int(end)
        self.calls.append((expr, s, e))
        ts = np.arange(s, e + step, step, dtype=np.int64)
        vals = ((ts - START) // STEP).astype(np.float64)
        m = re.search(r'user=~"([^"]*)"', expr)
        users = [u for u in self.users if m is None or not self.obey or re.fullmatch(m.group(1), u)]
        return [
            RangeSeries({"__name__": "x", "user": u, "disk": str(d)}, ts, vals + d)
            for u in users
            for d in range(self.extra)
        ]

    def query(self, expr: str, time: float | None = None) -> list[InstantSample]:
        self.calls.append((expr, 0, 0))
        return [InstantSample({"user": u}, 0.0, 10.0) for u in self.users]


def planned(users: list[str], weight: int = 1) -> list[PlannedSeries]:
    return [PlannedSeries({"user": u}, weight) for u in users]


def test_chunks_are_stitched_into_one_grid_and_counted() -> None:
    client = Recording(["a", "b"])
    reader = ShardReader(client, planned(["a", "b"]), group_by=["user"], aggregate="sum",
                         budget=ReadBudget(samples_per_query=60))  # fmt: skip
    out = reader.query_range("x", START, START + (N - 1) * STEP, STEP)
    # 100 points x 2 series is over 60: one series per batch, 60 then 40 points each.
    calls = sorted((q, (s - START) // STEP, (e - START) // STEP) for q, s, e in client.calls)
    assert calls == [('x{user=~"a"}', 0, 59), ('x{user=~"a"}', 60, 99),
                     ('x{user=~"b"}', 0, 59), ('x{user=~"b"}', 60, 99)]  # fmt: skip
    assert sorted(r.labels["user"] for r in out) == ["a", "b"]
    for r in out:
        assert np.array_equal(r.timestamps, START + STEP * np.arange(N))
        assert np.array_equal(r.values, np.arange(N, dtype=np.float64))
    assert reader.stats.queries == 4 and reader.stats.samples == 2 * N
    assert reader.stats.max_samples_per_query == 60 and reader.stats.over_budget_queries == 0
    assert reader.stats.max_points_per_series == 60


def test_series_that_are_not_the_shards_are_dropped() -> None:
    # An answer with more than was asked for (e.g. a query the matchers could not narrow).
    client = Recording(["a", "b", "newcomer"], obey_matchers=False)
    reader = ShardReader(client, planned(["a"]), group_by=["user"], aggregate="sum")
    out = reader.query_range("x", START, START + 10 * STEP, STEP)
    assert [r.labels["user"] for r in out] == ["a"]
    assert reader.stats.dropped_series == 2
    assert [x.labels["user"] for x in reader.query("quota", time=START)] == ["a"]


def test_more_series_than_planned_shrink_the_next_chunk() -> None:
    client = Recording(["a"], extra_per_user=5)  # the plan said 1 series per key; there are 5
    reader = ShardReader(client, planned(["a"]), group_by=["user"], aggregate="sum",
                         budget=ReadBudget(samples_per_query=50))  # fmt: skip
    reader.query_range("x", START, START + (N - 1) * STEP, STEP)
    sizes = [(e - s) // STEP + 1 for _, s, e in client.calls]
    assert sizes[0] == 50  # sized from the plan: 1 series x 50 points
    assert reader.stats.over_budget_queries == 1  # ... but it held 5 x 50
    assert set(sizes[1:]) == {10}  # every later chunk re-sized: 5 x 10 = 50
    assert sum(sizes) == N


def test_batches_become_separate_queries_run_concurrently() -> None:
    users = [f"u{i:03d}" for i in range(40)]
    client = Recording(users)
    reader = ShardReader(client, planned(users), group_by=["user"], aggregate="sum",
                         budget=ReadBudget(samples_per_query=10 * N, concurrency=3))  # fmt: skip
    reader.query_range("x", START, START + (N - 1) * STEP, STEP)
    queries = {q for q, _, _ in client.calls}
    assert len(queries) == 4  # 40 series in batches of 10, each a whole-range query
    assert all(q.startswith('x{user=~"u0') for q in queries)


def test_the_reader_feeds_the_same_ingestion_as_a_single_run() -> None:
    users = ["a", "b", "c"]
    full = ingest(Recording(users, 2), "x", start=START, end=START + 50 * STEP, step=STEP, group_by=["user"])
    parts = [
        ingest(ShardReader(Recording(users, 2), planned(group), group_by=["user"], aggregate="sum",
                           budget=ReadBudget(samples_per_query=20)),
               "x", start=START, end=START + 50 * STEP, step=STEP, group_by=["user"]).panel
        for group in (["a", "c"], ["b"])
    ]  # fmt: skip
    keys = parts[0].keys + parts[1].keys
    values = np.vstack([parts[0].values, parts[1].values])
    order = np.argsort([k["user"] for k in keys])
    assert [keys[i] for i in order] == full.panel.keys
    assert np.array_equal(values[order], full.panel.values)


def test_an_empty_shard_asks_nothing() -> None:
    client = Recording(["a"])
    reader = ShardReader(client, [], group_by=["user"], aggregate="sum")
    assert reader.query_range("x", START, START + STEP, STEP) == []
    assert reader.query("quota") == [] and client.calls == []
