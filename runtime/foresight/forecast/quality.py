"""What a ForecastTask run refuses to misread in its input, and what it does about each class.

A run reads its history (:mod:`.ingest`); before any model sees it, :func:`inspect_panel` judges
each series, and after the forecast :func:`clip_to_range` keeps it within the quantity's domain.
Every class is counted in ``status.dataQuality``; where someone must act or should know, it is
described in one warning line: what was found, which series (the first few named), since when
(RFC 3339) and what to do.

=================  ===========================================  =======================================
class              found when                                   what the run does
=================  ===========================================  =======================================
stale              a series' newest sample is                   no forecast "from now" is written for it
                   :data:`STALE_STEPS` or more steps older      (its gauges are left out and
                   than the grid's end                          ``foresight_data_stale`` is 1); the
                                                                ``StaleData`` condition names it
out of range       inputs outside ``source.valueRange``         flagged and read as they are; forecasts
                                                                and bounds are clipped to the range
invalid capacity   a per-series capacity is zero, negative      read as unknown: no time-to-threshold for
                   or missing                                   the series, never a pushed 0
extreme outliers   a run of at most :data:`OUTLIER_RUN`         read as missing before any model sees
                   samples :data:`OUTLIER_FACTOR` times the     them, so one absurd sample spoils neither
                   series' usual spread away from its median    its own model nor, through the global
                                                                network, anyone else's
gaps               missing steps inside a series' span          counted; a warning when a series misses
                                                                more than :data:`GAP_WARN` of its span
late start         the first sample is more than one step       counted and named (its models see less
                   after the lookback's start                   history)
dropped            fewer than ``limits.minHistoryPoints``       counted (ingestion's note names them)
                   points
duplicates         two series are one after grouping            the run fails as bad input
                                                                (:class:`~foresight.prometheus.errors.
                                                                DuplicateSeriesError`, exit code 2)
=================  ===========================================  =======================================

What is normal is never warned about: the first point of a counter's increase (it has no
predecessor), and one missing step at either end of the grid (a grid one step longer than the
data: the lookback's first step, or a newest sample not scraped yet).

Why the outlier spread is what it is: the 90th percentile of the distances from the median (robust
to a tenth of the points being wild); for a series that sits on one value nine times in ten (a flat
usage, a count that is mostly 0), 1% of its level, or for a level of 0 the median of its departures.
Only short runs are outliers: a change that lasts longer than :data:`OUTLIER_RUN` steps is a change
of level, which the models must learn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from foresight.api.forecasttask import ValueRange
from foresight.contract.forecast import DataQualityReport
from foresight.timeseries import FloatArray, Forecast, Panel, rfc3339, series_text

from .ingest import IngestResult

__all__ = [
    "GAP_WARN",
    "NAMED",
    "OUTLIER_FACTOR",
    "OUTLIER_RUN",
    "STALE_STEPS",
    "DataQuality",
    "clip_to_range",
    "inspect_panel",
    "outlier_mask",
]

STALE_STEPS = 3
"""A series whose newest sample is this many steps (or more) older than the grid's end is stale.
One step late is normal (the newest scrape may not have landed); two is tolerated."""
OUTLIER_FACTOR = 100.0
"""How many times its usual spread a sample must be from a series' median to be an extreme outlier."""
OUTLIER_RUN = 3
"""Longest run of consecutive far samples read as outliers; a longer one is a change of level."""
GAP_WARN = 0.1
"""A series missing more than this share of the steps in its own span gets a warning."""
NAMED = 5
"""Series named in one warning; the rest are counted."""
_MIN_POINTS = 8  # too few points to tell an outlier from the series


@dataclass
class DataQuality:
    """What :func:`inspect_panel` found (and :func:`clip_to_range` added), for status and write-back."""

    series: int
    stale: npt.NDArray[np.bool_]
    """Per series of the panel: stale (no forecast from now is written for it)."""
    missing_points: int = 0
    late_series: int = 0
    dropped_series: int = 0
    out_of_range_series: int = 0
    outlier_series: int = 0
    invalid_capacity_series: int = 0
    clipped_series: int = 0
    warnings: list[str] = field(default_factory=list)
    stale_message: str | None = None
    """The ``StaleData`` condition's message (``None``: no series is stale)."""

    @property
    def stale_series(self) -> int:
        return int(self.stale.sum())

    def report(self) -> DataQualityReport:
        """The contract's form (the run's result, then ``status.dataQuality``)."""
        return DataQualityReport(
            series=self.series,
            missing_points=self.missing_points,
            late_series=self.late_series,
            stale_series=self.stale_series,
            dropped_series=self.dropped_series,
            out_of_range_series=self.out_of_range_series,
            clipped_series=self.clipped_series,
            outlier_series=self.outlier_series,
            invalid_capacity_series=self.invalid_capacity_series,
            warnings=list(self.warnings),
            stale_message=self.stale_message,
        )


def _named(items: Sequence[str]) -> str:
    shown = ", ".join(items[:NAMED])
    return shown + (f" and {len(items) - NAMED} more" if len(items) > NAMED else "")


def _spans(values: FloatArray) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Each row's first and last column with a value (-1 for a row without any)."""
    ok = np.isfinite(values)
    n = values.shape[1]
    has = ok.any(axis=1)
    first = np.where(has, np.argmax(ok, axis=1), -1)
    last = np.where(has, n - 1 - np.argmax(ok[:, ::-1], axis=1), -1)
    return first.astype(np.int64), last.astype(np.int64)


def outlier_mask(row: FloatArray) -> npt.NDArray[np.bool_]:
    """The extreme outliers of one series (see the module docstring): short runs of samples far
    from its median, counted in its usual spread."""
    out = np.zeros(row.shape, dtype=bool)
    ok = np.flatnonzero(np.isfinite(row))
    if ok.size < _MIN_POINTS:
        return out
    x = row[ok]
    med = float(np.median(x))
    dist = np.abs(x - med)
    spread = float(np.quantile(dist, 0.9))
    if spread == 0.0:
        departures = dist[dist > 0]
        spread = 0.01 * abs(med) if med != 0 else float(np.median(departures)) if departures.size else 0.0
    if spread == 0.0:
        return out
    far = dist > OUTLIER_FACTOR * spread
    # Runs of consecutive far samples (consecutive among the samples present).
    k = 0
    while k < far.size:
        if not far[k]:
            k += 1
            continue
        end = k
        while end + 1 < far.size and far[end + 1]:
            end += 1
        if end - k + 1 <= OUTLIER_RUN:
            out[ok[k : end + 1]] = True
        k = end + 1
    return out


def inspect_panel(
    ingested: IngestResult,
    *,
    counter: bool = False,
    value_range: ValueRange | None = None,
    threshold: bool = False,
) -> tuple[Panel, DataQuality]:
    """Judge every series of ``ingested.panel``; the panel the models get, and the findings.

    The returned panel has extreme outliers read as missing and unusable capacities (zero,
    negative) as unknown (NaN); everything else is as read.

    Args:
        ingested: what ingestion read.
        counter: the source is a raw counter turned into increases (its first step is NaN by construction).
        value_range: ``source.valueRange``, if any.
        threshold: the task has a threshold (capacities are judged only then).
    """
    panel = ingested.panel
    values = panel.values
    first, last = _spans(values)
    n = panel.n_steps
    stale = (last >= 0) & (n - 1 - last >= STALE_STEPS)
    quality = DataQuality(series=panel.n_series, stale=stale, dropped_series=len(ingested.short_series))
    keys = [series_text(k) for k in panel.keys]
    _gaps(quality, values, first, last, keys)
    _late(quality, panel, first, keys, tolerance=2 if counter else 1)
    if value_range is not None:
        _out_of_range(quality, panel, value_range, keys)
    cleaned = _outliers(quality, panel, keys)
    if threshold and cleaned.capacity is not None:
        cleaned = _capacities(quality, cleaned, keys)
    if stale.any():
        quality.stale_message = _stale_message(panel, stale, last, keys)
    return cleaned, quality


def _gaps(
    quality: DataQuality,
    values: FloatArray,
    first: npt.NDArray[np.int64],
    last: npt.NDArray[np.int64],
    keys: list[str],
) -> None:
    span = np.where(last >= 0, last - first + 1, 0)
    missing = span - np.isfinite(values).sum(axis=1)
    quality.missing_points = int(missing.sum())
    share = np.where(span > 0, missing / np.maximum(span, 1), 0.0)
    worst = [int(i) for i in np.argsort(-share, kind="stable") if share[i] > GAP_WARN]
    if worst:
        named = [f"{keys[i]} ({int(missing[i])} of {int(span[i])} steps)" for i in worst]
        quality.warnings.append(
            f"{len(worst)} series miss more than {GAP_WARN:.0%} of the steps in their span, read as "
            f"missing (never as 0): {_named(named)}: check that the scrape target behind source.query "
            "is up and scraped at least once per source.step"
        )


def _late(
    quality: DataQuality, panel: Panel, first: npt.NDArray[np.int64], keys: list[str], *, tolerance: int
) -> None:
    late = [int(i) for i in np.flatnonzero(first > tolerance)]
    quality.late_series = len(late)
    if late:
        named = [
            f"{keys[i]} (first sample {rfc3339(panel.start + int(first[i]) * panel.step)})" for i in late
        ]
        quality.warnings.append(
            f"{len(late)} series start after the lookback's start ({rfc3339(panel.start)}), so their "
            f"models see less history: {_named(named)}; nothing to do if they are new"
        )


def _out_of_range(quality: DataQuality, panel: Panel, value_range: ValueRange, keys: list[str]) -> None:
    lo = -np.inf if value_range.min is None else value_range.min
    hi = np.inf if value_range.max is None else value_range.max
    with np.errstate(invalid="ignore"):
        outside = np.isfinite(panel.values) & ((panel.values < lo) | (panel.values > hi))
    rows = [int(i) for i in np.flatnonzero(outside.any(axis=1))]
    quality.out_of_range_series = len(rows)
    if not rows:
        return
    named = []
    for i in rows:
        cols = np.flatnonzero(outside[i])
        worst = panel.values[i, cols[np.argmax(np.abs(panel.values[i, cols]))]]
        named.append(
            f"{keys[i]} ({cols.size} samples since {rfc3339(panel.start + int(cols[0]) * panel.step)}, "
            f"e.g. {worst:.6g})"
        )
    quality.warnings.append(
        f"{len(rows)} series have inputs outside source.valueRange [{lo:g}, {hi:g}]: {_named(named)}; "
        "they are read as they are and the forecasts and bounds are clipped to the range: check the "
        "exporter and the query (deriv() or a subtraction can go negative), or widen valueRange"
    )


def _outliers(quality: DataQuality, panel: Panel, keys: list[str]) -> Panel:
    masks = (
        np.vstack([outlier_mask(row) for row in panel.values]) if panel.n_series else np.zeros((0, 0), bool)
    )
    rows = [int(i) for i in np.flatnonzero(masks.any(axis=1))] if panel.n_series else []
    quality.outlier_series = len(rows)
    if not rows:
        return panel
    named = []
    for i in rows:
        cols = np.flatnonzero(masks[i])
        shown = ", ".join(
            f"{panel.values[i, c]:.6g} at {rfc3339(panel.start + int(c) * panel.step)}" for c in cols[:2]
        )
        named.append(f"{keys[i]} ({shown}{' ...' if cols.size > 2 else ''})")
    quality.warnings.append(
        f"{len(rows)} series have extreme outliers (over {OUTLIER_FACTOR:g} times their usual spread from "
        f"their median, for at most {OUTLIER_RUN} steps), read as missing so that they spoil no model: "
        f"{_named(named)}: check the exporter for glitches (a wrapped counter, a wrong unit); a real change "
        f"of level is used once it lasts more than {OUTLIER_RUN} steps"
    )
    return replace(panel, values=np.where(masks, np.nan, panel.values))


def _capacities(quality: DataQuality, panel: Panel, keys: list[str]) -> Panel:
    assert panel.capacity is not None
    cap = np.asarray(panel.capacity, dtype=np.float64)
    bad = ~(np.isfinite(cap) & (cap > 0))
    quality.invalid_capacity_series = int(bad.sum())
    if not bad.any():
        return panel
    named = [f"{keys[i]} ({'missing' if np.isnan(cap[i]) else f'{cap[i]:g}'})" for i in np.flatnonzero(bad)]
    quality.warnings.append(
        f"{int(bad.sum())} series have no usable capacity (zero, negative or missing), so no "
        f"time-to-threshold is written for them: {_named(named)}: make threshold.capacity.query return "
        "a positive limit, with the groupBy labels, for every series"
    )
    return replace(panel, capacity=np.where(bad, np.nan, cap))


def _stale_message(
    panel: Panel, stale: npt.NDArray[np.bool_], last: npt.NDArray[np.int64], keys: list[str]
) -> str:
    rows = [int(i) for i in np.flatnonzero(stale)]
    rows.sort(key=lambda i: int(last[i]))
    named = [f"{keys[i]} (newest sample {rfc3339(panel.start + int(last[i]) * panel.step)})" for i in rows]
    return (
        f"{len(rows)} of {panel.n_series} series have had no sample for {STALE_STEPS} steps or more before "
        f"{rfc3339(panel.end)}: {_named(named)}. No forecast from now is written for them "
        "(foresight_data_stale is 1): check the exporter or scrape target behind source.query; their "
        "forecasts return with the first run that finds current samples"
    )


def clip_to_range(forecast: Forecast, value_range: ValueRange | None) -> tuple[Forecast, int]:
    """``forecast`` with the point and the bounds clipped into ``value_range``; and how many series
    had anything clipped."""
    if value_range is None or (value_range.min is None and value_range.max is None):
        return forecast, 0
    lo = -np.inf if value_range.min is None else value_range.min
    hi = np.inf if value_range.max is None else value_range.max
    changed = np.zeros(len(forecast.keys), dtype=bool)
    clipped: dict[str, Any] = {}
    for name in ("point", "lower", "upper"):
        values = getattr(forecast, name)
        new = np.clip(values, lo, hi)  # NaN stays NaN
        with np.errstate(invalid="ignore"):
            changed |= (np.isfinite(values) & (new != values)).any(axis=1)
        clipped[name] = new
    return replace(forecast, **clipped), int(changed.sum())
