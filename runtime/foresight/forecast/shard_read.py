"""One shard's reads: the task's queries narrowed to the shard's series, under a sample budget.

:class:`ShardReader` offers the two reads ingestion makes (``query_range`` and ``query``, the
:class:`foresight.prometheus.client.PrometheusQueries` protocol), so a shard builds its panel
with the very same :func:`foresight.forecast.ingest.ingest` a single run uses (grouping,
aggregation, counters, covariates, capacity), only over its own series::

    part = load_shard(store, plan_prefix, index)
    reader = ShardReader(client, part.series, group_by=part.group_by, aggregate=part.aggregate)
    result = ingest(reader, part.query, start=part.start, end=part.end, step=part.step, ...)

Each read is split into batches of the shard's series (:func:`foresight.prometheus.read_budget.pack_batches`),
each batch's query narrowed with :mod:`foresight.prometheus.promql`, and each batch read over
step-aligned time chunks sized so that series x points stays under the budget; the chunk after
an answer is re-sized from the series that answer really held (a covariate may have more series
per key than the plan counted). Batches run ``budget.concurrency`` at a time; every HTTP call
goes through the client's own retry policy (exponential backoff on 5xx and timeouts). The
pieces are stitched per label set, and any series that is not the shard's (a series created
since the plan) is dropped, so the union of all shards' panels is the single run's panel.
:attr:`ShardReader.stats` counts queries and samples for status and the benchmark.
"""

from __future__ import annotations

import logging
import threading
import time as _time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from foresight.prometheus.client import InstantSample, PrometheusClient, RangeSeries, align_range
from foresight.prometheus.promql import Restriction, restriction_for
from foresight.prometheus.read_budget import ReadBudget, pack_batches, points_per_query

from .ingest import Aggregate, series_key
from .shard_plan import PlannedSeries

__all__ = ["ReadStats", "ShardReader"]

log = logging.getLogger(__name__)

Key = tuple[tuple[str, str], ...]


@dataclass
class ReadStats:
    """What a shard's reads cost (status and the Prometheus-load benchmark)."""

    queries: int = 0
    samples: int = 0
    """Points returned, all queries together."""
    max_samples_per_query: int = 0
    max_points_per_series: int = 0
    """The most points one series had in one range query's answer."""
    over_budget_queries: int = 0
    """Queries whose answer held more samples than the budget (a single series longer than the
    budget, or far more series per key than the plan counted)."""
    dropped_series: int = 0
    """Series answered but not the shard's (new since the plan): not forecast here."""
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    """One line per query that could not be fully narrowed on Prometheus' side."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ShardReader:
    """The reads of one shard: ``query_range`` / ``query`` restricted to ``series``.

    Args:
        client: the Prometheus client (its retry policy and timeout apply to every call).
        series: the shard's part of the plan (keys on ``group_by``, weights = raw series per key).
        group_by, aggregate: the task's, exactly as given to ingestion.
        budget: the sample budget, batch sizes and concurrency.
        clock: seconds, for :attr:`ReadStats.seconds`.
    """

    def __init__(
        self,
        client: PrometheusClient,
        series: Sequence[PlannedSeries],
        *,
        group_by: Sequence[str],
        aggregate: Aggregate,
        budget: ReadBudget | None = None,
        clock: Callable[[], float] = _time.monotonic,
    ) -> None:
        self._client = client
        self.group_by = list(group_by)
        self.aggregate: Aggregate = aggregate
        self.budget = budget or ReadBudget()
        self._clock = clock
        ordered = sorted(series, key=lambda p: sorted(p.labels.items()))
        self._keys = [p.labels for p in ordered]
        self._weights = [p.weight for p in ordered]
        self._key_set = {series_key(k, self.group_by, aggregate) for k in self._keys}
        if self.group_by:
            self.labels: tuple[str, ...] = tuple(self.group_by)
        elif aggregate == "none":  # keys are whole label sets: narrow on every label they use
            self.labels = tuple(sorted({name for k in self._keys for name in k}))
        else:
            self.labels = ()  # one series of everything: nothing to narrow
        self.stats = ReadStats()
        self._lock = threading.Lock()
        self._restrictions: dict[str, Restriction] = {}

    @property
    def series_count(self) -> int:
        return len(self._keys)

    def _restriction(self, expr: str) -> Restriction:
        if expr not in self._restrictions:
            r = restriction_for(expr, self.labels)
            self._restrictions[expr] = r
            if r.note:
                self.stats.notes.append(f"{expr!r}: {r.note}")
                log.warning("shard read of %r not fully narrowed by Prometheus: %s", expr, r.note)
        return self._restrictions[expr]

    def _batches(self, restriction: Restriction, n_points: int) -> list[list[int]]:
        filtered = len(self.labels) > 1 or not all(restriction.exact.get(lab, False) for lab in self.labels)
        return pack_batches(
            self._keys,
            self._weights,
            labels=[lab for lab in self.labels if restriction.pushdown.get(lab)],
            n_points=n_points,
            budget=self.budget,
            filter_chars=restriction.filter_chars if filtered else None,
        )

    def _record(self, samples: int, points: int) -> None:
        with self._lock:
            self.stats.queries += 1
            self.stats.samples += samples
            self.stats.max_samples_per_query = max(self.stats.max_samples_per_query, samples)
            self.stats.max_points_per_series = max(self.stats.max_points_per_series, points)
            if samples > self.budget.samples_per_query:
                self.stats.over_budget_queries += 1

    # -- range reads ---------------------------------------------------------------------------

    def query_range(self, expr: str, start: float, end: float, step: int) -> list[RangeSeries]:
        """``expr`` over ``[start, end]`` for this shard's series only (see the module docstring)."""
        s, e = align_range(start, end, step)
        if not self._keys:
            return []
        t0 = self._clock()
        restriction = self._restriction(expr)
        n_points = (e - s) // step + 1
        batches = self._batches(restriction, n_points)
        workers = max(1, min(self.budget.concurrency, len(batches)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="shard-read") as pool:
            parts = list(pool.map(lambda b: self._read_batch(restriction, b, s, e, step), batches))
        merged: dict[Key, tuple[dict[str, str], list[RangeSeries]]] = {}
        for part in parts:
            for rs in part:
                merged.setdefault(tuple(sorted(rs.labels.items())), (rs.labels, []))[1].append(rs)
        out = []
        for labels, pieces in merged.values():
            if series_key(labels, self.group_by, self.aggregate) not in self._key_set:
                self.stats.dropped_series += 1
                continue
            ts = np.concatenate([p.timestamps for p in pieces])
            vals = np.concatenate([p.values for p in pieces])
            uts, idx = np.unique(ts, return_index=True)  # sorted; a boundary sample counted once
            out.append(RangeSeries(labels, uts, vals[idx]))
        self.stats.seconds += self._clock() - t0
        return out

    def _read_batch(
        self, restriction: Restriction, batch: list[int], s: int, e: int, step: int
    ) -> list[RangeSeries]:
        query = restriction.render([self._keys[i] for i in batch])
        seen = sum(max(1, self._weights[i]) for i in batch)
        cap = min(self.budget.points_per_series, self._client.max_points_per_query)
        out: list[RangeSeries] = []
        cs = s
        while cs <= e:
            points = min(points_per_query(seen, (e - cs) // step + 1, self.budget), cap)
            ce = cs + (points - 1) * step
            got = self._client.query_range(query, cs, ce, step, series_hint=seen)  # one request: sized here
            self._record(
                sum(len(r.timestamps) for r in got), max((len(r.timestamps) for r in got), default=0)
            )
            seen = max(seen, len(got))  # size the next chunk from what this one really held
            out.extend(got)
            cs = ce + step
        return out

    # -- instant reads ---------------------------------------------------------------------------

    def query(self, expr: str, time: float | None = None) -> list[InstantSample]:
        """``expr`` at ``time`` for this shard's keys (ingestion's per-series capacity query).

        With an empty ``group_by`` ingestion applies one capacity value to every series, so the
        query is passed through unchanged.
        """
        if not self.group_by:
            got = self._client.query(expr, time=time)
            self._record(len(got), 1)
            return got
        if not self._keys:
            return []
        t0 = self._clock()
        restriction = self._restriction(expr)
        batches = self._batches(restriction, 1)
        workers = max(1, min(self.budget.concurrency, len(batches)))

        def one(batch: list[int]) -> list[InstantSample]:
            got = self._client.query(restriction.render([self._keys[i] for i in batch]), time=time)
            self._record(len(got), 1)
            return got

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="shard-read") as pool:
            parts = list(pool.map(one, batches))
        wanted = {tuple((g, k.get(g, "")) for g in self.group_by) for k in self._keys}
        out = [
            x
            for part in parts
            for x in part
            if tuple((g, x.labels.get(g, "")) for g in self.group_by) in wanted
        ]
        self.stats.seconds += self._clock() - t0
        return out
