"""Seasonal naive baseline: every future step equals the value one season earlier."""

from __future__ import annotations

from typing import Any

import numpy as np

from foresight.timeseries import FloatArray

from ._baseline import IntArray, PointBaseline, ffill
from .base import steps_per_day

__all__ = ["SeasonalNaiveModel"]


class SeasonalNaiveModel(PointBaseline):
    """Repeat the last full season (default: the last day) of each series."""

    name = "seasonal_naive"

    def __init__(
        self, *, season_length: int | None = None, level: float = 0.8, max_origins: int = 336
    ) -> None:
        """
        Args:
            season_length: season in steps; ``None`` = one day at the panel's step.
            level: nominal coverage of the empirical interval.
            max_origins: past origins used for the interval.
        """
        super().__init__(level=level, max_origins=max_origins)
        if season_length is not None and season_length < 1:
            raise ValueError(f"season_length must be at least 1, got {season_length}")
        self.season_length = season_length

    def params(self) -> dict[str, Any]:
        return {**super().params(), "season_length": self.season_length}

    def point_at_origins(self, values: FloatArray, origins: IntArray, horizon: int, step: int) -> FloatArray:
        m = self.season_length or steps_per_day(step)
        h = np.arange(1, horizon + 1)
        # Step h repeats the value k seasons back, k the fewest whole seasons that reach the past.
        lag = m * ((h + m - 1) // m)
        src = origins[:, None] + h[None, :] - lag[None, :]  # (n_origins, horizon)
        filled = ffill(values)
        # Before a full season of history exists, fall back to the first value (clip index 0).
        out = filled[:, np.clip(src, 0, None)]
        return np.asarray(out, dtype=np.float64)
