"""Prometheus ``predict_linear(v[range], t)`` as a model: the baseline SREs alert on today.

Prometheus fits ordinary least squares to the samples of the range vector with ``x`` = sample
time minus the *evaluation time*, in seconds, so the intercept is the fitted value at the
evaluation time and the result is ``intercept + slope * t`` (``promql/functions.go``,
``linearRegression`` / ``funcPredictLinear``). Here the evaluation time is the forecast origin
(``panel.end``) and ``t`` is ``h * step`` for horizon step ``h``.

The range vector covers ``[T - range, T]`` (both ends, Prometheus 2.x, the version shipped by
Debian and used by the tests) or ``(T - range, T]`` (Prometheus 3.x, ``left_open=True``).
Missing samples are simply absent from the range vector, as in Prometheus; with fewer than two
samples Prometheus returns nothing, and this model falls back to the last observed value.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from foresight.timeseries import FloatArray

from ._baseline import IntArray, PointBaseline

__all__ = ["LinearModel", "predict_linear"]


def predict_linear(
    times: FloatArray, values: FloatArray, eval_time: float, durations: FloatArray
) -> FloatArray:
    """Prometheus' ``predict_linear`` over the last axis: one regression per leading index.

    Args:
        times: sample times in seconds, broadcastable to ``values``.
        values: samples, shape ``(..., n_samples)``; NaN marks an absent sample.
        eval_time: the evaluation time (the regression's intercept time), seconds.
        durations: seconds ahead, shape ``(n_durations,)``.

    Returns:
        Shape ``(..., n_durations)``; NaN where fewer than two samples are present.
    """
    y = np.asarray(values, dtype=np.float64)
    mask = np.isfinite(y)
    x = np.broadcast_to(np.asarray(times, dtype=np.float64) - eval_time, y.shape)
    n = mask.sum(axis=-1).astype(np.float64)
    y0 = np.where(mask, y, 0.0)
    x0 = np.where(mask, x, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        sum_x = x0.sum(axis=-1)
        sum_y = y0.sum(axis=-1)
        sum_xy = (x0 * y0).sum(axis=-1)
        sum_x2 = (x0 * x0).sum(axis=-1)
        cov_xy = sum_xy - sum_x * sum_y / n
        var_x = sum_x2 - sum_x * sum_x / n
        slope = cov_xy / var_x
        intercept = sum_y / n - slope * sum_x / n
        # Newer Prometheus versions return slope 0 for a constant series (no float noise); same result.
        first = np.take_along_axis(y, np.argmax(mask, axis=-1)[..., None], axis=-1)[..., 0]
        const = np.all(~mask | (y == first[..., None]), axis=-1)
        slope = np.where(const, 0.0, slope)
        intercept = np.where(const, first, intercept)
        out = intercept[..., None] + slope[..., None] * np.asarray(durations, dtype=np.float64)
    return np.where((n >= 2)[..., None], out, np.nan)


class LinearModel(PointBaseline):
    """``predict_linear(v[range], h * step)`` per horizon step, with empirical intervals."""

    name = "linear"

    def __init__(
        self,
        *,
        range_seconds: int = 6 * 3600,
        left_open: bool = False,
        level: float = 0.8,
        max_origins: int = 336,
    ) -> None:
        """
        Args:
            range_seconds: the range of ``v[range]``, e.g. 21600 for ``[6h]``: use the alert's own.
            left_open: ``True`` for Prometheus 3.x range semantics ``(T - range, T]``.
            level: nominal coverage of the empirical interval.
            max_origins: past origins used for the interval.
        """
        super().__init__(level=level, max_origins=max_origins)
        if range_seconds <= 0:
            raise ValueError(f"range_seconds must be positive, got {range_seconds}")
        self.range_seconds = range_seconds
        self.left_open = left_open

    def params(self) -> dict[str, Any]:
        return {**super().params(), "range_seconds": self.range_seconds, "left_open": self.left_open}

    def window_steps(self, step: int) -> int:
        """Samples in the range vector on a grid of ``step`` seconds."""
        k = self.range_seconds // step
        closed_end_on_grid = self.range_seconds % step == 0 and not self.left_open
        return int(k + 1 if closed_end_on_grid else k) if k > 0 else 1

    def point_at_origins(self, values: FloatArray, origins: IntArray, horizon: int, step: int) -> FloatArray:
        w = self.window_steps(step)
        n_series = values.shape[0]
        # Left-pad with NaN so early origins see a short (partial) range, as Prometheus would.
        padded = np.concatenate([np.full((n_series, w - 1), np.nan), values], axis=1)
        windows = sliding_window_view(padded, w, axis=1)[:, origins, :]  # (n, n_origins, w)
        times = (np.arange(w, dtype=np.float64) - (w - 1)) * step  # relative to each origin
        durations = np.arange(1, horizon + 1, dtype=np.float64) * step
        return predict_linear(times, windows, 0.0, durations)
