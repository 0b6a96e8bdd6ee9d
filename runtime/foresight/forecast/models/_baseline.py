"""Shared machinery of the closed-form baselines (naive, seasonal naive, predict_linear).

A baseline is a point rule applied at a forecast origin. The same rule applied at many past
origins gives in-sample errors, whose empirical quantiles per horizon step are the prediction
interval: no distributional assumption, and honest about bursts (wide bands where the series is
bursty).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import numpy as np
import numpy.typing as npt

from foresight.timeseries import FloatArray, Forecast, Panel

from .base import Model, ProgressCallback, empirical_bounds

__all__ = ["PointBaseline", "ffill"]

IntArray = npt.NDArray[np.int64]

BLOCK_CELLS = 2_000_000
"""Residual cells (series x origins x horizon) the interval step holds at once: 16 MB of floats
per array, ~250 series of two weeks of hourly origins at a 24 h horizon."""


def ffill(values: FloatArray) -> FloatArray:
    """Carry the last observed value forward along each row (leading NaNs stay NaN)."""
    v = np.asarray(values, dtype=np.float64)
    idx = np.where(np.isfinite(v), np.arange(v.shape[1])[None, :], 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    out = v[np.arange(v.shape[0])[:, None], idx]
    # Rows whose first values are NaN keep NaN until the first observation.
    seen = np.maximum.accumulate(np.isfinite(v), axis=1)
    return np.where(seen, out, np.nan)


class PointBaseline(Model):
    """A baseline defined by a point rule; ``fit`` has nothing to learn, bounds come from history."""

    def __init__(self, *, level: float = 0.8, max_origins: int = 336) -> None:
        """
        Args:
            level: nominal coverage of the empirical interval.
            max_origins: how many of the latest past origins estimate the residual quantiles
                (336 = two weeks of hours); bounds cost and memory.
        """
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level}")
        self.level = level
        self.max_origins = max_origins

    def params(self) -> dict[str, Any]:
        return {"level": self.level, "max_origins": self.max_origins}

    def fit(
        self, panel: Panel, horizon: int, *, seed: int = 0, progress: ProgressCallback | None = None
    ) -> None:
        """Nothing to learn: the rule and its in-sample errors are computed from the panel at predict."""
        _check_horizon(horizon)

    @abstractmethod
    def point_at_origins(self, values: FloatArray, origins: IntArray, horizon: int, step: int) -> FloatArray:
        """Point forecasts shaped ``(n_series, len(origins), horizon)`` from each origin column."""

    def predict(self, panel: Panel, horizon: int) -> Forecast:
        _check_horizon(horizon)
        values = panel.values
        n = panel.n_steps
        if n == 0:
            raise ValueError("cannot forecast from an empty panel (no time steps)")
        point = self.point_at_origins(values, np.array([n - 1], dtype=np.int64), horizon, panel.step)[:, 0, :]
        # Where the rule has no data (a gap at the seasonal lag, too few samples in the regression
        # window) the last observed value is the least surprising answer. All-NaN rows stay NaN.
        last = ffill(values)[:, -1]
        point = np.where(np.isfinite(point), point, last[:, None])
        lo, hi = self._interval_offsets(values, horizon, panel.step)
        return Forecast(
            origin=panel.end,
            step=panel.step,
            keys=panel.keys,
            point=point,
            lower=point + lo,
            upper=point + hi,
            model=[self.name] * panel.n_series,
            level=self.level,
        )

    def _interval_offsets(self, values: FloatArray, horizon: int, step: int) -> tuple[FloatArray, FloatArray]:
        """Lower / upper offsets from the rule's errors at the latest ``max_origins`` past origins.

        The errors of one series are (origins x horizon) floats, several times its own history
        (336 x 24 against 720 points for two weeks of hours), and the quantiles copy them again:
        computed for every series at once they made a baseline's peak memory ~250 KB per series
        (2.5 GB for 10,000), so they are computed for :data:`BLOCK_CELLS` worth of series at a
        time. The rule is per series, so the blocks give exactly the same bounds.
        """
        n_series, n = values.shape
        last_origin = n - 1 - horizon
        if last_origin < 0:
            return np.zeros((n_series, horizon)), np.zeros((n_series, horizon))
        first = max(0, last_origin - self.max_origins + 1)
        origins = np.arange(first, last_origin + 1, dtype=np.int64)
        target_idx = origins[:, None] + np.arange(1, horizon + 1)[None, :]
        lo, hi = np.zeros((n_series, horizon)), np.zeros((n_series, horizon))
        rows = max(1, BLOCK_CELLS // (len(origins) * horizon))
        for r0 in range(0, n_series, rows):
            block = values[r0 : r0 + rows]
            past = self.point_at_origins(block, origins, horizon, step)
            residuals = np.transpose(block[:, target_idx] - past, (0, 2, 1))  # (rows, horizon, origins)
            lo[r0 : r0 + rows], hi[r0 : r0 + rows] = empirical_bounds(residuals, self.level)
        return lo, hi


def _check_horizon(horizon: int) -> None:
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1 step, got {horizon}")
