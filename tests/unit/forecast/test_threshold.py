"""Time-to-threshold and anomaly flags."""

from __future__ import annotations

import math

import numpy as np
import pytest
from foresight.forecast.threshold import anomaly_flags, threshold_report, time_to_threshold
from foresight.timeseries import Forecast, Panel


def test_crossing_time_is_exact_on_a_linear_ramp() -> None:
    # Usage 90 now, +1 per 600 s step; threshold 95 is reached 5 steps = 3000 s ahead, and 93.5
    # is reached half-way between steps 3 and 4.
    path = 90.0 + np.arange(1, 13, dtype=float)[None, :].repeat(2, axis=0)
    out = time_to_threshold(path, np.array([90.0, 90.0]), np.array([95.0, 93.5]), 600)
    assert out.tolist() == [3000.0, 2100.0]


def test_not_crossed_is_inf_and_already_over_is_zero() -> None:
    path = np.array([[1.0, 2.0], [10.0, 11.0]])
    out = time_to_threshold(path, np.array([0.5, 10.0]), np.array([5.0, 9.0]), 60)
    assert math.isinf(out[0]) and out[1] == 0.0


def test_report_uses_capacity_ratio_for_point_and_upper() -> None:
    panel = Panel(start=0, step=3600, keys=[{}], values=np.array([[90.0]]), capacity=np.array([100.0]))
    point = np.array([[91.0, 92.0, 93.0, 94.0]])
    fc = Forecast(origin=0, step=3600, keys=[{}], point=point, lower=point - 1, upper=point + 2, model=["x"])
    rep = threshold_report(fc, panel, ratio=0.95)
    assert rep.threshold.tolist() == [95.0]
    assert math.isinf(rep.seconds[0])
    assert rep.seconds_upper[0] == pytest.approx(3 * 3600.0)  # upper = 93, 94, 95: step 3
    with pytest.raises(ValueError, match="capacity"):
        threshold_report(fc, Panel(start=0, step=1, keys=[{}], values=np.array([[1.0]])))


def test_anomaly_flag_outside_previous_band() -> None:
    point = np.array([[10.0, 11.0], [10.0, 11.0], [10.0, 11.0]])
    fc = Forecast(
        origin=100, step=10, keys=[{}] * 3, point=point, lower=point - 1, upper=point + 1, model=["x"] * 3
    )
    flags = anomaly_flags(fc, 120, np.array([11.5, 12.5, np.nan]))
    assert flags.tolist() == [False, True, False]
    with pytest.raises(ValueError, match="not a step"):
        anomaly_flags(fc, 125, np.array([1.0, 1.0, 1.0]))
