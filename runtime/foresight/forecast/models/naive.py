"""Naive baseline: every future step equals the last observed value."""

from __future__ import annotations

import numpy as np

from foresight.timeseries import FloatArray

from ._baseline import IntArray, PointBaseline, ffill

__all__ = ["NaiveModel"]


class NaiveModel(PointBaseline):
    """Repeat the last observed value (gaps: the last value before the gap)."""

    name = "naive"

    def point_at_origins(self, values: FloatArray, origins: IntArray, horizon: int, step: int) -> FloatArray:
        last = ffill(values)[:, origins]
        return np.repeat(last[:, :, None], horizon, axis=2)
