"""Forecast accuracy: how far a forecast was from what happened.

NaN-aware: missing actuals are skipped, never counted as zero error.

All functions take arrays shaped ``(n_series, n_points)`` and return one value per series.
MASE divides by the in-sample MAE of a seasonal naive forecast, so 1.0 means "as good as repeating
yesterday" and the number is comparable across series of any size.
"""

from __future__ import annotations

import numpy as np

from foresight.timeseries import FloatArray

__all__ = ["coverage", "mae", "mase", "rmse", "seasonal_naive_scale"]


def _nanmean_rows(x: FloatArray) -> FloatArray:
    counts = np.isfinite(x).sum(axis=1)
    total = np.nansum(x, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, total / np.maximum(counts, 1), np.nan)


def mae(actual: FloatArray, point: FloatArray) -> FloatArray:
    """Mean absolute error per series."""
    return _nanmean_rows(np.abs(np.asarray(actual) - np.asarray(point)))


def rmse(actual: FloatArray, point: FloatArray) -> FloatArray:
    """Root mean squared error per series."""
    return np.sqrt(_nanmean_rows((np.asarray(actual) - np.asarray(point)) ** 2))


def seasonal_naive_scale(history: FloatArray, season: int) -> FloatArray:
    """In-sample MAE of the seasonal naive forecast (``y[t] - y[t - season]``) per series.

    Falls back to the lag-1 (naive) MAE where the history is shorter than a season plus one.
    A zero scale (a constant history) becomes NaN so MASE is NaN rather than infinite.
    """
    h = np.asarray(history, dtype=np.float64)
    m = season if h.shape[1] > season else 1
    if h.shape[1] <= m:
        return np.full(h.shape[0], np.nan)
    scale = _nanmean_rows(np.abs(h[:, m:] - h[:, :-m]))
    return np.where(scale > 0, scale, np.nan)


def mase(actual: FloatArray, point: FloatArray, scale: FloatArray) -> FloatArray:
    """Mean absolute scaled error per series: ``mae / scale``."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return mae(actual, point) / np.asarray(scale)


def coverage(actual: FloatArray, lower: FloatArray, upper: FloatArray) -> FloatArray:
    """Fraction of observed actuals inside ``[lower, upper]`` per series."""
    a = np.asarray(actual)
    inside = np.where(np.isfinite(a), (a >= lower) & (a <= upper), np.nan)
    return _nanmean_rows(inside.astype(np.float64))
