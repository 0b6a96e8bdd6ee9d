"""The sample budget's arithmetic: points per query, step-aligned time chunks, series batches."""

from __future__ import annotations

import random

import pytest
from foresight.prometheus.client import MAX_POINTS_PER_SERIES
from foresight.prometheus.read_budget import (
    ReadBudget,
    pack_batches,
    points_per_query,
    target_weight,
    time_chunks,
)


def test_points_per_query_respects_the_budget_and_prometheus_limit() -> None:
    b = ReadBudget(samples_per_query=10_000)
    assert points_per_query(10, 720, b) == 720  # the whole range fits
    assert points_per_query(100, 720, b) == 100
    assert points_per_query(3, 100_000, b) == 3333
    assert points_per_query(1, 100_000, b) == 10_000
    big = ReadBudget(samples_per_query=10**9)
    assert points_per_query(1, 100_000, big) == MAX_POINTS_PER_SERIES  # 11,000 per series, always
    # One series longer than the budget is still read, a point at a time (counted as over budget).
    assert points_per_query(50_000, 720, b) == 1
    for series in range(1, 300, 7):
        for n in (1, 5, 720, 50_000):
            p = points_per_query(series, n, b)
            assert 1 <= p <= min(n, MAX_POINTS_PER_SERIES)
            assert series * p <= b.samples_per_query or p == 1


def test_time_chunks_cover_the_grid_once_on_the_step() -> None:
    rng = random.Random(7)
    for _ in range(300):
        step = rng.choice([15, 60, 300, 3600])
        start = rng.randrange(0, 10**6) * step
        end = start + rng.randrange(0, 5000) * step
        points = rng.randrange(1, 2000)
        chunks = time_chunks(start, end, step, points)
        assert chunks[0][0] == start and chunks[-1][1] == end
        for (a, b), nxt in zip(chunks, [*chunks[1:], None], strict=True):
            assert a % step == 0 and b % step == 0 and a <= b
            assert (b - a) // step + 1 <= points
            if nxt is not None:
                assert nxt[0] == b + step  # no gap, no overlap
        assert sum((b - a) // step + 1 for a, b in chunks) == (end - start) // step + 1


def test_time_chunks_refuse_an_unaligned_grid() -> None:
    with pytest.raises(ValueError, match="multiples of the step"):
        time_chunks(10, 3600, 3600, 5)


def keys(n: int) -> list[dict[str, str]]:
    return [{"user": f"user-{i:04d}", "cluster": "abc"[i % 3]} for i in range(n)]


def test_batches_keep_series_x_points_under_the_budget() -> None:
    b = ReadBudget(samples_per_query=7200)
    ks = keys(200)
    weights = [1 + i % 4 for i in range(200)]  # raw series per key
    batches = pack_batches(ks, weights, labels=["user", "cluster"], n_points=720, budget=b)
    assert target_weight(720, b) == 10
    assert sorted(i for batch in batches for i in batch) == list(range(200))  # each key exactly once
    for batch in batches:
        assert batch == sorted(batch)  # plan order kept, so regexes share values
        assert sum(weights[i] for i in batch) <= 10
        assert (
            sum(weights[i] for i in batch) * points_per_query(sum(weights[i] for i in batch), 720, b) <= 7200
        )
    # Beyond 11,000 points the target is set by a full chunk of 11,000.
    assert target_weight(50_000, ReadBudget(samples_per_query=110_000)) == 10


def test_a_key_heavier_than_the_target_gets_its_own_batch() -> None:
    b = ReadBudget(samples_per_query=1000)
    batches = pack_batches(keys(4), [1, 500, 1, 1], labels=["user"], n_points=100, budget=b)
    assert batches == [[0], [1], [2, 3]]


def test_batches_keep_each_regex_under_the_matcher_limit() -> None:
    b = ReadBudget(samples_per_query=10**9, max_matcher_chars=100)
    ks = keys(100)  # "user-0001" is 9 characters + "|"
    batches = pack_batches(ks, [1] * 100, labels=["user", "cluster"], n_points=10, budget=b)
    assert [len(x) for x in batches] == [10] * 10
    # The cluster regex repeats 3 values, counted once each.
    batches = pack_batches(ks, [1] * 100, labels=["cluster"], n_points=10, budget=b)
    assert batches == [list(range(100))]


def test_batches_keep_the_exact_filter_under_its_limit() -> None:
    b = ReadBudget(samples_per_query=10**9, max_filter_chars=1000)
    batches = pack_batches(keys(100), [1] * 100, labels=[], n_points=10, budget=b, filter_chars=lambda k: 100)
    assert [len(x) for x in batches] == [10] * 10


def test_budget_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="11000"):
        ReadBudget(points_per_series=20_000)
    with pytest.raises(ValueError, match="concurrency"):
        ReadBudget(concurrency=0)
    with pytest.raises(ValueError, match="samples_per_query"):
        ReadBudget(samples_per_query=0)
