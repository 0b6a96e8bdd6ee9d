"""Time-to-threshold and the anomaly flag: the numbers an SRE alerts on.

"Quota exhausted in 3 h 20 min" is the first time the forecast reaches ``capacity * ratio``,
interpolated linearly between grid steps (step 0 is the last observed value). It is computed for
the point forecast and, separately, for the upper bound ("could be exhausted as early as...").
``inf`` means not within the horizon. The anomaly flag says the latest actual left the band that
an earlier forecast gave for that moment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from foresight.timeseries import FloatArray, Forecast, Panel, rfc3339

from .models._baseline import ffill

__all__ = ["ThresholdResult", "anomaly_flags", "threshold_report", "time_to_threshold"]


def time_to_threshold(path: FloatArray, last: FloatArray, threshold: FloatArray, step: int) -> FloatArray:
    """Seconds until each row of ``path`` first reaches ``threshold`` (``inf`` if never).

    Args:
        path: forecast values, shape ``(n_series, horizon)``; step ``h`` is ``h * step`` seconds ahead.
        last: the last observed value per series (the path's step 0); NaN if unknown.
        threshold: per series.
        step: grid step in seconds.

    A series already at or over the threshold gets 0. The crossing time between steps ``h-1`` and
    ``h`` is interpolated linearly; when step 0 is unknown a crossing at step 1 counts as ``step``.
    """
    p = np.asarray(path, dtype=np.float64)
    n = p.shape[0]
    thr = np.broadcast_to(np.asarray(threshold, dtype=np.float64), (n,))
    full = np.concatenate([np.asarray(last, dtype=np.float64).reshape(n, 1), p], axis=1)
    out = np.full(n, np.inf)
    # NaN compares False: a missing forecast step is never a crossing.
    reached = full >= thr[:, None]
    for i in range(n):
        hits = np.flatnonzero(reached[i])
        if hits.size == 0:
            continue
        h = int(hits[0])
        if h == 0:
            out[i] = 0.0
            continue
        prev, cur = full[i, h - 1], full[i, h]
        if not np.isfinite(prev) or cur == prev:
            out[i] = h * step
        else:
            frac = (thr[i] - prev) / (cur - prev)
            out[i] = (h - 1 + float(np.clip(frac, 0.0, 1.0))) * step
    return out


@dataclass(frozen=True)
class ThresholdResult:
    threshold: FloatArray
    """``capacity * ratio`` per series."""
    seconds: FloatArray
    """Time to threshold of the point forecast (``inf``: not within the horizon; NaN: no usable
    threshold for the series, which is then never reported as crossing)."""
    seconds_upper: FloatArray
    """Time to threshold of the upper bound: the earliest plausible exhaustion."""


def threshold_report(
    forecast: Forecast, panel: Panel, ratio: float = 0.95, capacity: FloatArray | float | None = None
) -> ThresholdResult:
    """Time to ``capacity * ratio`` for a forecast made from ``panel``.

    ``capacity`` defaults to ``panel.capacity``; a scalar applies to every series.
    """
    cap = panel.capacity if capacity is None else capacity
    if cap is None:
        raise ValueError("no capacity: pass capacity= or build the panel with a per-series capacity")
    thr = np.broadcast_to(np.asarray(cap, dtype=np.float64) * ratio, (panel.n_series,)).copy()
    last = ffill(panel.values)[:, -1] if panel.n_steps else np.full(panel.n_series, np.nan)
    known = np.isfinite(thr) & (thr > 0)  # a zero or missing capacity says nothing about exhaustion
    thr = np.where(known, thr, np.nan)
    return ThresholdResult(
        threshold=thr,
        seconds=np.where(known, time_to_threshold(forecast.point, last, thr, forecast.step), np.nan),
        seconds_upper=np.where(known, time_to_threshold(forecast.upper, last, thr, forecast.step), np.nan),
    )


def anomaly_flags(previous: Forecast, at: int, actual: FloatArray) -> npt.NDArray[np.bool_]:
    """Whether ``actual`` (per series, at Unix second ``at``) lies outside ``previous``'s band.

    ``at`` must be one of the previous forecast's steps. A missing actual is not an anomaly.
    """
    offset = at - previous.origin
    h, rem = divmod(offset, previous.step)
    if rem != 0 or not 1 <= h <= previous.horizon:
        raise ValueError(
            f"time {rfc3339(at)} is not a step of the previous forecast (origin {rfc3339(previous.origin)}, "
            f"step {previous.step}s, horizon {previous.horizon} steps); compare against a forecast that "
            "covers it"
        )
    a = np.asarray(actual, dtype=np.float64)
    lo, hi = previous.lower[:, h - 1], previous.upper[:, h - 1]
    return np.isfinite(a) & ((a < lo) | (a > hi))
