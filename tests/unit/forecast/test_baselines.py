"""Closed-form baselines: naive, seasonal naive and Prometheus predict_linear."""

from __future__ import annotations

from typing import Any

import numpy as np
from foresight.forecast.models import get_model
from foresight.forecast.models.linear import LinearModel, predict_linear
from foresight.timeseries import Panel

from .conftest import START, seasonal_panel


def test_seasonal_naive_repeats_the_last_day() -> None:
    panel = seasonal_panel(days=5)
    fc = get_model("seasonal_naive").predict(panel, 30)
    last_day = panel.values[:, -24:]
    np.testing.assert_array_equal(fc.point[:, :24], last_day)
    np.testing.assert_array_equal(fc.point[:, 24:30], last_day[:, :6])
    assert fc.origin == panel.end and fc.model == ["seasonal_naive"] * 3


def test_naive_repeats_last_value_across_a_trailing_gap() -> None:
    values = np.array([[1.0, 2.0, 3.0, np.nan, np.nan]])
    fc = get_model("naive").predict(Panel(start=START, step=60, keys=[{}], values=values), 3)
    np.testing.assert_array_equal(fc.point, [[3.0, 3.0, 3.0]])


def test_predict_linear_matches_a_hand_computed_case() -> None:
    # Samples at T-3h..T (step 1 h, range [3h] closed at both ends = 4 samples): y = 1, 3, 2, 6.
    # x = -10800, -7200, -3600, 0 s; mean x = -5400, mean y = 3.
    # cov = sum((x-mx)(y-my)) = (-5400)(-2) + (-1800)(0) + (1800)(-1) + (5400)(3) = 25200 (x 1)
    # var = 5400^2 + 1800^2 + 1800^2 + 5400^2 = 64_800_000
    # slope = 25200 / 64_800_000 = 3.888..e-4 per s; intercept (at T) = 3 - slope * (-5400) = 5.1
    # predict_linear(v[3h], 7200) = 5.1 + 2 * 1.4 = 7.9 (slope * 3600 = 1.4).
    values = np.array([[100.0, 1.0, 3.0, 2.0, 6.0]])  # the first sample is outside the range
    panel = Panel(start=START, step=3600, keys=[{}], values=values)
    fc = LinearModel(range_seconds=3 * 3600).predict(panel, 2)
    np.testing.assert_allclose(fc.point, [[6.5, 7.9]], rtol=1e-12)
    # Prometheus 3 semantics drop the sample at T - range: fit on 3, 2, 6 at -2h, -1h, 0:
    # mean x = -1 h, mean y = 11/3, cov = 3, var = 2 -> slope 1.5 per h, intercept 11/3 + 1.5.
    fc3 = LinearModel(range_seconds=3 * 3600, left_open=True).predict(panel, 1)
    np.testing.assert_allclose(fc3.point, [[11 / 3 + 1.5 + 1.5]], rtol=1e-12)


def test_predict_linear_ignores_missing_samples_and_needs_two() -> None:
    t = np.array([-2.0, -1.0, 0.0])
    out = predict_linear(t, np.array([[1.0, np.nan, 3.0], [np.nan, np.nan, 5.0]]), 0.0, np.array([1.0]))
    np.testing.assert_allclose(out[0], [4.0])
    assert np.isnan(out[1, 0])
    # The model falls back to the last value where the regression has too few samples.
    panel = Panel(start=START, step=1, keys=[{}], values=np.array([[np.nan, np.nan, 5.0]]))
    assert LinearModel(range_seconds=2).predict(panel, 2).point.tolist() == [[5.0, 5.0]]


def test_baseline_bounds_bracket_the_point_and_cover_noise() -> None:
    rng = np.random.default_rng(1)
    # Many series: one trajectory's errors are correlated across steps, so coverage needs breadth.
    values = 50 + rng.standard_normal((40, 24 * 20))
    panel = Panel(start=START, step=3600, keys=[{"a": str(i)} for i in range(40)], values=values)
    for name in ("naive", "seasonal_naive", "linear"):
        fc = get_model(name).predict(panel.head(24 * 19), 24)
        assert np.all(fc.lower <= fc.point) and np.all(fc.point <= fc.upper), name
        actual = values[:, 24 * 19 :]
        inside = ((actual >= fc.lower) & (actual <= fc.upper)).mean()
        assert 0.65 < inside <= 0.95, (name, inside)


def test_baseline_bounds_are_the_same_when_computed_a_few_series_at_a_time(monkeypatch: Any) -> None:
    # The interval step works through the series in blocks to bound its memory; a block boundary
    # must not change any series' bounds (each series' errors are its own).
    from foresight.forecast.models import _baseline

    rng = np.random.default_rng(3)
    values = seasonal_panel(days=6).values.repeat(5, axis=0) + rng.normal(0, 2, (15, 144))
    values[4, 100:110] = np.nan  # a gap in one series of a middle block
    panel = Panel(start=START, step=3600, keys=[{"s": str(i)} for i in range(15)], values=values)
    for name in ("naive", "seasonal_naive", "linear"):
        whole = get_model(name).predict(panel, 12)
        monkeypatch.setattr(_baseline, "BLOCK_CELLS", 4 * 12 * 96)  # 2 series a block (132 origins)
        blocked = get_model(name).predict(panel, 12)
        monkeypatch.undo()
        np.testing.assert_array_equal(blocked.lower, whole.lower)
        np.testing.assert_array_equal(blocked.upper, whole.upper)
        assert (whole.upper > whole.lower).any()
