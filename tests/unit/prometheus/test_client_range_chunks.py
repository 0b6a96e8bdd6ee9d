"""PrometheusClient.query_range: time chunks sized by a sample budget, merged exactly once."""

from __future__ import annotations

from typing import Any

import numpy as np
from foresight.prometheus.client import FIRST_CHUNK_SERIES, PrometheusClient

STEP = 60
START = 1_700_000_040  # a multiple of STEP


class _Response:
    status_code = 200

    def __init__(self, body: dict[str, Any]) -> None:
        self._body = body

    def json(self) -> dict[str, Any]:
        return self._body


class FakeSession:
    """A range-query endpoint over ``n_series`` series with value = series * 1000 + minute; records
    each request's (start, end)."""

    def __init__(self, n_series: int) -> None:
        self.n_series = n_series
        self.requests: list[tuple[int, int]] = []

    def post(self, url: str, data: dict[str, str], **kwargs: Any) -> _Response:
        s, e, step = int(data["start"]), int(data["end"]), int(data["step"])
        self.requests.append((s, e))
        ts = range(s, e + 1, step)
        result = [
            {"metric": {"i": str(i)}, "values": [[t, str(i * 1000 + (t - START) // STEP)] for t in ts]}
            for i in range(self.n_series)
        ]
        return _Response({"status": "success", "data": {"resultType": "matrix", "result": result}})


def _read(session: FakeSession, points: int, budget: int, hint: int | None = None) -> list[Any]:
    client = PrometheusClient("http://fake", session=session, samples_per_query=budget)  # type: ignore[arg-type]
    return client.query_range("x", START, START + (points - 1) * STEP, STEP, series_hint=hint)


def test_a_range_over_the_sample_budget_is_read_in_chunks_sized_from_the_first_answer() -> None:
    session = FakeSession(n_series=40)
    got = _read(session, points=100, budget=FIRST_CHUNK_SERIES * 5)  # first chunk: 5 points
    sizes = [(e - s) // STEP + 1 for s, e in session.requests]
    assert sizes[0] == 5
    assert all(n * 40 <= FIRST_CHUNK_SERIES * 5 for n in sizes)  # then sized for the 40 series seen
    assert sum(sizes) == 100 and len(session.requests) < 10
    assert [s for s, _ in session.requests][1:] == [e + STEP for _, e in session.requests][:-1]  # no overlap
    assert len(got) == 40
    for rs in got:
        i = int(rs.labels["i"])
        np.testing.assert_array_equal(rs.timestamps, START + STEP * np.arange(100))
        np.testing.assert_array_equal(rs.values, i * 1000 + np.arange(100))


def test_a_known_series_count_sizes_the_first_chunk_too() -> None:
    session = FakeSession(n_series=10)
    got = _read(session, points=100, budget=1000, hint=10)
    assert [(e - s) // STEP + 1 for s, e in session.requests] == [100]
    assert len(got) == 10


def test_few_series_take_a_first_chunk_then_the_rest_at_once() -> None:
    session = FakeSession(n_series=3)
    got = _read(session, points=720, budget=1_000_000)
    first = 1_000_000 // FIRST_CHUNK_SERIES
    assert [(e - s) // STEP + 1 for s, e in session.requests] == [first, 720 - first]
    assert all(len(rs.timestamps) == 720 for rs in got)


class OffGridSession(FakeSession):
    """A compatible server that answers a third of a step late, and one point beyond the range."""

    def post(self, url: str, data: dict[str, str], **kwargs: Any) -> _Response:
        s, e, step = int(data["start"]), int(data["end"]), int(data["step"])
        self.requests.append((s, e))
        values = [[t + 20.0, str((t - START) // STEP)] for t in range(s, e + 2 * step, step)]
        result = [{"metric": {"i": "0"}, "values": values}]
        return _Response({"status": "success", "data": {"resultType": "matrix", "result": result}})


def test_samples_off_the_step_grid_go_to_the_nearest_step_and_beyond_the_range_are_left_out() -> None:
    got = _read(OffGridSession(n_series=1), points=10, budget=1000, hint=1)
    assert len(got) == 1
    np.testing.assert_array_equal(got[0].timestamps, START + STEP * np.arange(10))
    np.testing.assert_array_equal(got[0].values, np.arange(10))
