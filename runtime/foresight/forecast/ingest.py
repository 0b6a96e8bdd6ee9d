"""Ingestion: PromQL over a time range -> a :class:`foresight.timeseries.Panel`.

What a ``ForecastTask`` source becomes before any model sees it:

- One ``query_range`` per query (the main one and each covariate), aligned to the step and
  chunked by :class:`foresight.prometheus.PrometheusClient`.
- Series keyed by the ``group_by`` labels. When the query returns more labels than that, the
  extra ones are aggregated away here, client-side (``sum`` / ``max`` / ``mean``), so any PromQL
  works, even one without ``sum by (...)``. A label missing from a series counts as ``""``
  (Prometheus' own rule). ``aggregate="none"`` requires the ``group_by`` labels to identify each
  series; with an empty ``group_by`` it keeps every series with its full label set.
- A regular grid from ``start`` to ``end`` (aligned down to the step). Steps without a sample
  are NaN, and so are NaN / ±Inf samples: gaps are explicit, never filled here.
- ``counter=True`` turns a raw counter into the increase over each step, handling resets the way
  PromQL's ``increase`` does (a drop means the counter restarted from zero), per raw series
  before aggregation. Unlike ``increase`` it does not extrapolate to the window edges, and the
  first step and any step after a gap are NaN. Users normally write ``rate(x[5m])`` or
  ``increase(x[1h])`` in PromQL instead; this option exists for raw counters.
- Series that start after ``start`` (a new user, a new volume) are NaN-padded in front and
  reported in :attr:`IngestResult.late_series`; series with fewer than ``min_history_points``
  points are dropped and reported; if none has enough, :class:`InsufficientHistoryError`.
- Two raw series that become the same forecast series without an aggregation to merge them
  (``aggregate="none"``), or whose written labels would be equal, are bad input:
  :class:`~foresight.prometheus.errors.DuplicateSeriesError`.
- Capacity (the threshold base) is a constant, a ratio of a constant, or a PromQL instant query
  at ``end`` giving each series its own limit, matched on the ``group_by`` labels; series without
  a limit get NaN (:mod:`foresight.forecast.quality` says which, with zero and negative ones).

:attr:`IngestResult.warnings` are about the queries (a covariate without data, a capacity query
that cannot be matched); what the series themselves look like (late, stale, gaps, out of range)
is judged by :mod:`foresight.forecast.quality`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from foresight.prometheus.client import PrometheusQueries, RangeSeries, align_range
from foresight.prometheus.errors import (
    DuplicateSeriesError,
    InsufficientHistoryError,
    NoSeriesError,
    TooManySeriesError,
)
from foresight.prometheus.labels import series_labels
from foresight.timeseries import FloatArray, Panel, series_text

__all__ = [
    "Aggregate",
    "Capacity",
    "ConstantCapacity",
    "IngestResult",
    "QueryCapacity",
    "RatioCapacity",
    "counter_increase",
    "ingest",
    "load_panel",
    "series_key",
]

log = logging.getLogger(__name__)

Aggregate = Literal["sum", "max", "mean", "none"]
Key = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ConstantCapacity:
    """The same limit for every series (e.g. a 1 TiB quota), in the metric's unit."""

    value: float


@dataclass(frozen=True)
class RatioCapacity:
    """A fraction of a constant limit: ``value * ratio`` (e.g. alert at 90 % of 1 TiB)."""

    value: float
    ratio: float


@dataclass(frozen=True)
class QueryCapacity:
    """A PromQL instant query (evaluated at the range end) that gives each series its own limit.

    Its samples are matched to series on the ``group_by`` labels and aggregated the same way as
    the main query (``max`` when ``aggregate="none"``). With an empty ``group_by``, a query that
    returns exactly one sample applies it to every series.
    """

    query: str
    ratio: float = 1.0


Capacity = ConstantCapacity | RatioCapacity | QueryCapacity


@dataclass
class IngestResult:
    """The panel plus what a user should hear about it (status / events / logs)."""

    panel: Panel
    late_series: list[tuple[dict[str, str], int]] = field(default_factory=list)
    """Series whose first sample came after the range start, with that first Unix second."""
    short_series: list[tuple[dict[str, str], int]] = field(default_factory=list)
    """Series dropped for having fewer than ``min_history_points`` points, with their count."""
    warnings: list[str] = field(default_factory=list)
    """Human-readable notes about the queries (covariates without data, dropped series, a capacity
    query that cannot be matched)."""
    raw_series: int = 0
    """How many series the main query returned before grouping."""


def counter_increase(values: FloatArray) -> FloatArray:
    """Per-step increase of counters on a grid (rows are series), handling resets.

    ``out[:, t] = v[t] - v[t-1]``, or ``v[t]`` when the counter went down (it restarted from zero
    and counted ``v[t]`` since, as PromQL's ``increase`` assumes). NaN where either side is NaN.
    """
    v = np.asarray(values, dtype=np.float64)
    out = np.full_like(v, np.nan)
    if v.shape[-1] < 2:
        return out
    prev, cur = v[..., :-1], v[..., 1:]
    with np.errstate(invalid="ignore"):
        diff = cur - prev
        out[..., 1:] = np.where(cur < prev, cur, diff)
    return out


def _key(labels: Mapping[str, str], group_by: Sequence[str], aggregate: Aggregate) -> Key:
    if not group_by and aggregate == "none":
        return tuple(sorted((k, v) for k, v in labels.items() if k != "__name__"))
    return tuple((g, labels.get(g, "")) for g in group_by)


def series_key(labels: Mapping[str, str], group_by: Sequence[str], aggregate: Aggregate) -> Key:
    """The forecast series a raw series of the query belongs to (the grouping rule above).

    Public for sharded runs (:mod:`foresight.forecast.shard_plan`), which must assign series to
    shards exactly as ingestion groups them.
    """
    return _key(labels, group_by, aggregate)


def _to_grid(series: RangeSeries, start: int, n_steps: int, step: int) -> FloatArray:
    row = np.full(n_steps, np.nan)
    idx = (series.timestamps - start) // step
    ok = ((series.timestamps - start) % step == 0) & (idx >= 0) & (idx < n_steps)
    vals = series.values[ok]
    row[idx[ok]] = np.where(np.isfinite(vals), vals, np.nan)
    return row


def _reduce(rows: FloatArray, aggregate: Aggregate) -> FloatArray:
    """Combine rows of one group; a step where every row is NaN stays NaN."""
    if rows.shape[0] == 1:
        return rows[0]
    all_nan = np.all(np.isnan(rows), axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if aggregate == "sum":
            out = np.nansum(rows, axis=0)
        elif aggregate == "max":
            out = np.nanmax(rows, axis=0)
        elif aggregate == "mean":
            out = np.nanmean(rows, axis=0)
        else:
            raise AssertionError(aggregate)
    out[all_nan] = np.nan
    return np.asarray(out, dtype=np.float64)


def _group(
    series: list[RangeSeries],
    *,
    query: str,
    start: int,
    n_steps: int,
    step: int,
    group_by: Sequence[str],
    aggregate: Aggregate,
    counter: bool,
) -> dict[Key, FloatArray]:
    groups: dict[Key, list[FloatArray]] = {}
    for s in series:
        row = _to_grid(s, start, n_steps, step)
        if counter:
            row = counter_increase(row[None, :])[0]
        groups.setdefault(_key(s.labels, group_by, aggregate), []).append(row)
    out: dict[Key, FloatArray] = {}
    for key, rows in groups.items():
        if aggregate == "none" and len(rows) > 1:
            why = (
                "aggregation is none and they share the groupBy labels"
                if group_by
                else "aggregation is none and their labels other than the metric name are equal"
            )
            raise DuplicateSeriesError(query, dict(key), len(rows), group_by, why)
        out[key] = _reduce(np.vstack(rows), aggregate)
    return out


def _check_written_labels(query: str, keys: Sequence[Key], group_by: Sequence[str]) -> None:
    """Refuse two series whose labels as written back are equal (a label and its ``series_``
    twin, or names that sanitise alike): their gauges would be one series."""
    seen: dict[tuple[tuple[str, str], ...], Key] = {}
    for key in keys:
        try:
            written = tuple(sorted(series_labels(dict(key)).items()))
        except ValueError as exc:  # two label names of one series sanitise alike
            raise DuplicateSeriesError(query, dict(key), 1, group_by, str(exc)) from exc
        if written in seen:
            raise DuplicateSeriesError(
                query, dict(key), 2, group_by,
                f"written back, {series_text(dict(seen[written]))} and {series_text(dict(key))} get the "
                "same labels",
            )  # fmt: skip
        seen[written] = key


def _capacity(
    client: PrometheusQueries,
    capacity: Capacity | None,
    keys: list[Key],
    *,
    end: int,
    group_by: Sequence[str],
    aggregate: Aggregate,
    notes: list[str],
) -> FloatArray | None:
    n = len(keys)
    if capacity is None:
        return None
    if isinstance(capacity, ConstantCapacity):
        return np.full(n, float(capacity.value))
    if isinstance(capacity, RatioCapacity):
        return np.full(n, float(capacity.value) * float(capacity.ratio))
    samples = client.query(capacity.query, time=end)
    out = np.full(n, np.nan)
    if not group_by:
        finite = [s.value for s in samples if np.isfinite(s.value)]
        if len(finite) == 1:
            out[:] = finite[0] * capacity.ratio
        else:
            notes.append(
                f"capacity query {capacity.query!r} returned {len(finite)} samples but groupBy is empty, "
                "so none can be matched to a series: return a single value or set groupBy"
            )
        return out
    by_key: dict[Key, list[float]] = {}
    for s in samples:
        if np.isfinite(s.value):
            by_key.setdefault(tuple((g, s.labels.get(g, "")) for g in group_by), []).append(s.value)
    agg: Aggregate = "max" if aggregate == "none" else aggregate
    for i, key in enumerate(keys):
        vals = by_key.get(tuple((g, dict(key).get(g, "")) for g in group_by))
        if vals:
            out[i] = _reduce(np.array(vals, dtype=np.float64)[:, None], agg)[0] * capacity.ratio
    return out


def ingest(
    client: PrometheusQueries,
    query: str,
    *,
    start: float,
    end: float,
    step: int,
    group_by: Sequence[str] = (),
    aggregate: Aggregate = "sum",
    covariates: Mapping[str, str] | None = None,
    capacity: Capacity | None = None,
    max_series: int = 1000,
    min_history_points: int = 2,
    counter: bool = False,
) -> IngestResult:
    """Load ``query`` over ``[start, end]`` into a panel, with a report of what was odd.

    Args:
        client: the Prometheus to read from.
        query: PromQL giving the series to forecast.
        start, end: Unix seconds; both aligned down to ``step``.
        step: grid step in seconds.
        group_by: the labels that identify one forecast series.
        aggregate: how series sharing the ``group_by`` labels are combined.
        covariates: ``{name: promql}``, each grouped like the main query and aligned to its
            series (NaN rows where a covariate has no matching series).
        capacity: the per-series limit (see the module docstring) or ``None``.
        max_series: cap on the number of forecast series (after grouping).
        min_history_points: non-missing points a series needs to be kept.
        counter: the query returns a raw counter; convert to per-step increases.

    Raises:
        NoSeriesError, TooManySeriesError, InsufficientHistoryError, and the client's errors
        (PromQLError, PrometheusUnavailable, PrometheusResponseError).
    """
    if aggregate not in ("sum", "max", "mean", "none"):
        raise ValueError(f"aggregate must be one of sum, max, mean, none; got {aggregate!r}")
    s, e = align_range(start, end, step)
    n_steps = (e - s) // step + 1
    group_by = list(group_by)
    raw = client.query_range(query, s, e, step)
    if not raw:
        raise NoSeriesError(query, s, e, step)
    grouped = _group(
        raw,
        query=query,
        start=s,
        n_steps=n_steps,
        step=step,
        group_by=group_by,
        aggregate=aggregate,
        counter=counter,
    )
    if len(grouped) > max_series:
        raise TooManySeriesError(query, len(grouped), max_series, group_by)

    _check_written_labels(query, list(grouped), group_by)
    keys, values, short = _drop_short(grouped, n_steps, query=query, min_history_points=min_history_points)
    notes: list[str] = []
    late = [(dict(k), s + first * step) for k, first in _first_points(keys, values) if first > 0]
    covs = {
        name: _covariate(client, name, promql, keys, s, e, step, group_by=group_by, aggregate=aggregate,
                         notes=notes)
        for name, promql in (covariates or {}).items()
    }  # fmt: skip
    cap = _capacity(client, capacity, keys, end=e, group_by=group_by, aggregate=aggregate, notes=notes)
    if short:
        named = ", ".join(f"{series_text(k)} ({n} points)" for k, n in short[:5])
        notes.append(
            f"{len(short)} series dropped with fewer than limits.minHistoryPoints ({min_history_points}) "
            f"points, not forecast: {named}{' ...' if len(short) > 5 else ''}"
        )
    panel = Panel(
        start=s, step=step, keys=[dict(k) for k in keys], values=values, covariates=covs, capacity=cap
    )
    return IngestResult(
        panel=panel, late_series=late, short_series=short, warnings=notes, raw_series=len(raw)
    )


def _drop_short(
    grouped: Mapping[Key, FloatArray], n_steps: int, *, query: str, min_history_points: int
) -> tuple[list[Key], FloatArray, list[tuple[dict[str, str], int]]]:
    """``(keys, values, dropped)``: the series with at least ``min_history_points`` points, sorted,
    and those without, with their counts. :class:`InsufficientHistoryError` when none has enough."""
    keys = sorted(grouped)
    values = np.vstack([grouped[k] for k in keys]) if keys else np.empty((0, n_steps))
    counts = np.sum(~np.isnan(values), axis=1)
    if int(counts.max(initial=0)) < min_history_points:
        raise InsufficientHistoryError(query, len(keys), int(counts.max(initial=0)), min_history_points)
    keep = counts >= min_history_points
    short = [(dict(k), int(c)) for k, c, ok in zip(keys, counts, keep, strict=True) if not ok]
    return [k for k, ok in zip(keys, keep, strict=True) if ok], values[keep], short


def _first_points(keys: list[Key], values: FloatArray) -> list[tuple[Key, int]]:
    """Each series' first column with a value."""
    return [(k, int(np.flatnonzero(~np.isnan(row))[0])) for k, row in zip(keys, values, strict=True)]


def _covariate(
    client: PrometheusQueries, name: str, promql: str, keys: list[Key], start: int, end: int,
    step: int, *, group_by: list[str], aggregate: Aggregate, notes: list[str],
) -> FloatArray:  # fmt: skip
    """The covariate ``promql`` grouped like the main query, one row per series in ``keys`` (NaN
    where it has no matching series, which ``notes`` then says)."""
    n_steps = (end - start) // step + 1
    grouped = _group(
        client.query_range(promql, start, end, step),
        query=promql,
        start=start,
        n_steps=n_steps,
        step=step,
        group_by=group_by,
        aggregate=aggregate,
        counter=False,
    )
    empty = np.full(n_steps, np.nan)
    unmatched = sum(1 for k in keys if k not in grouped)
    if unmatched:
        notes.append(f"covariate {name!r} ({promql!r}) has no data for {unmatched} of {len(keys)} series")
    return np.vstack([grouped.get(k, empty) for k in keys])


def load_panel(
    client: PrometheusQueries,
    query: str,
    *,
    start: float,
    end: float,
    step: int,
    group_by: Sequence[str] = (),
    aggregate: Aggregate = "sum",
    covariates: Mapping[str, str] | None = None,
    capacity: Capacity | None = None,
    max_series: int = 1000,
    min_history_points: int = 2,
    counter: bool = False,
) -> Panel:
    """:func:`ingest`, returning only the panel (its warnings are logged)."""
    result = ingest(
        client,
        query,
        start=start,
        end=end,
        step=step,
        group_by=group_by,
        aggregate=aggregate,
        covariates=covariates,
        capacity=capacity,
        max_series=max_series,
        min_history_points=min_history_points,
        counter=counter,
    )
    for note in result.warnings:
        log.warning("%s", note)
    return result.panel
