"""What a run refuses to misread (foresight.forecast.quality), class by class, and what is normal.

Each class: what is found, the series named with an RFC 3339 time (never epoch seconds), what
happens to the numbers; and the normal cases that must stay quiet (a counter's first point, a grid
one step longer than the data, bursty or trending series that are not outliers).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from foresight.api.forecasttask import ValueRange
from foresight.forecast.ingest import IngestResult
from foresight.forecast.quality import (
    OUTLIER_RUN,
    STALE_STEPS,
    clip_to_range,
    inspect_panel,
    outlier_mask,
)
from foresight.forecast.synthetic import make_storage_dataset
from foresight.timeseries import Forecast, Panel, rfc3339

START = 1_770_000_000 // 3600 * 3600
STEP = 3600
EPOCH = re.compile(r"\b1[6-9]\d{8}\b")  # a Unix time of these years, which no message may contain


def panel(values: Any, capacity: Any = None) -> Panel:
    v = np.asarray(values, dtype=np.float64)
    keys = [{"user": f"u{i}"} for i in range(v.shape[0])]
    cap = None if capacity is None else np.asarray(capacity, dtype=np.float64)
    return Panel(start=START, step=STEP, keys=keys, values=v, capacity=cap)


def steady(n_series: int = 3, n: int = 96, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return np.array([50 + 10 * np.sin(2 * np.pi * t / 24) + rng.standard_normal(n) for _ in range(n_series)])


def texts(quality: Any) -> str:
    return "\n".join([*quality.warnings, quality.stale_message or ""])


def test_clean_data_raises_nothing() -> None:
    cleaned, q = inspect_panel(IngestResult(panel(steady())), value_range=ValueRange(min=0), threshold=False)
    assert q.warnings == [] and q.stale_message is None
    report = q.report()
    assert (report.series, report.missing_points, report.stale_series, report.late_series) == (3, 0, 0, 0)
    assert (report.outlier_series, report.out_of_range_series, report.invalid_capacity_series) == (0, 0, 0)
    np.testing.assert_array_equal(cleaned.values, panel(steady()).values)


def test_a_series_whose_data_stopped_is_stale_from_the_third_missing_step_and_named_with_its_time() -> None:
    v = steady(4)
    v[1, -1:] = np.nan  # one step: the newest scrape has not landed, normal
    v[2, -2:] = np.nan  # two: tolerated
    v[3, -STALE_STEPS:] = np.nan  # stale
    _, q = inspect_panel(IngestResult(panel(v)))
    assert q.stale.tolist() == [False, False, False, True]
    assert q.report().stale_series == 1
    last = rfc3339(START + (v.shape[1] - 1 - STALE_STEPS) * STEP)
    assert q.stale_message is not None
    assert f"user=u3 (newest sample {last})" in q.stale_message and "1 of 4 series" in q.stale_message
    assert "no forecast from now" in q.stale_message.lower() and "check the exporter" in q.stale_message
    assert not EPOCH.search(texts(q)), texts(q)


def test_the_first_point_of_a_counter_and_one_step_of_grid_beyond_the_data_are_normal() -> None:
    v = steady(2)
    v[:, 0] = np.nan  # a grid one step longer than the data, at its start
    v[:, -1] = np.nan  # and at its end
    _, q = inspect_panel(IngestResult(panel(v)))
    assert q.warnings == [] and q.stale_message is None and q.report().late_series == 0
    v[:, 1] = np.nan  # a counter's increase: its first point has no predecessor as well
    _, counter = inspect_panel(IngestResult(panel(v)), counter=True)
    assert counter.warnings == [] and counter.report().late_series == 0
    _, gauge = inspect_panel(IngestResult(panel(v)))
    assert gauge.report().late_series == 2  # not a counter: two missing steps are a late start


def test_a_late_starting_series_is_named_with_its_first_sample_time() -> None:
    v = steady(2)
    v[1, :30] = np.nan
    _, q = inspect_panel(IngestResult(panel(v)))
    assert q.report().late_series == 1
    (warning,) = q.warnings
    assert f"user=u1 (first sample {rfc3339(START + 30 * STEP)})" in warning and "new" in warning


def test_gaps_are_counted_and_a_series_missing_much_of_its_span_is_named() -> None:
    v = steady(2)
    v[0, 10:12] = np.nan
    v[1, 20:50] = np.nan
    _, q = inspect_panel(IngestResult(panel(v)))
    assert q.report().missing_points == 32
    (warning,) = q.warnings
    assert "user=u1 (30 of 96 steps)" in warning and "user=u0" not in warning and "never as 0" in warning


def test_inputs_outside_the_value_range_are_flagged_since_their_first_time() -> None:
    v = steady(2)
    v[1, 40] = -3.5
    v[1, 41] = -1.0
    _, q = inspect_panel(IngestResult(panel(v)), value_range=ValueRange(min=0))
    assert q.report().out_of_range_series == 1
    (warning,) = q.warnings
    assert f"user=u1 (2 samples since {rfc3339(START + 40 * STEP)}, e.g. -3.5)" in warning
    assert "[0, inf]" in warning and "clipped" in warning
    assert not EPOCH.search(warning)


def test_forecasts_and_bands_are_clipped_into_the_range_and_counted() -> None:
    keys = [{"user": "a"}, {"user": "b"}]
    point = np.array([[5.0, 1.0, -2.0], [5.0, 6.0, 7.0]])
    fc = Forecast(origin=START, step=STEP, keys=keys, point=point, lower=point - 4, upper=point + 4,
                  model=["linear"] * 2)  # fmt: skip
    clipped, count = clip_to_range(fc, ValueRange(min=0, max=10))
    assert count == 2  # a's point and lower bound, b's upper bound
    assert clipped.point.tolist() == [[5.0, 1.0, 0.0], [5.0, 6.0, 7.0]]
    assert clipped.lower.min() == 0.0 and clipped.upper.max() == 10.0
    same, none = clip_to_range(fc, None)
    assert same is fc and none == 0


def test_zero_negative_and_missing_capacities_become_unknown_and_are_named() -> None:
    cleaned, q = inspect_panel(IngestResult(panel(steady(4), capacity=[100, 0, -5, np.nan])), threshold=True)
    assert cleaned.capacity is not None
    assert cleaned.capacity[0] == 100 and np.isnan(cleaned.capacity[1:]).all()
    assert q.report().invalid_capacity_series == 3
    (warning,) = q.warnings
    assert "user=u1 (0), user=u2 (-5), user=u3 (missing)" in warning
    assert "time-to-threshold" in warning and "threshold.capacity.query" in warning


def test_an_absurd_sample_is_read_as_missing_and_named_a_change_of_level_is_not() -> None:
    v = steady(3)
    v[0, 50] = 1e15
    v[1, 60:] = 5e4  # a real change of level: it lasts
    cleaned, q = inspect_panel(IngestResult(panel(v)))
    assert np.isnan(cleaned.values[0, 50]) and np.isfinite(np.delete(cleaned.values[0], 50)).all()
    np.testing.assert_array_equal(cleaned.values[1:], v[1:])
    assert q.report().outlier_series == 1
    (warning,) = q.warnings
    assert f"user=u0 (1e+15 at {rfc3339(START + 50 * STEP)})" in warning


@pytest.mark.parametrize("where", ["middle", "newest"])
def test_short_runs_of_wild_samples_are_outliers_anywhere(where: str) -> None:
    row = steady(1)[0]
    cols = slice(40, 40 + OUTLIER_RUN) if where == "middle" else slice(-OUTLIER_RUN, None)
    row[cols] = -1e9
    assert outlier_mask(row)[cols].all() and outlier_mask(row).sum() == OUTLIER_RUN
    row[40 : 40 + OUTLIER_RUN + 1] = -1e9
    assert not outlier_mask(row)[40 : 40 + OUTLIER_RUN + 1].any()  # longer: a change of level


def test_what_is_normal_is_not_an_outlier() -> None:
    rng = np.random.default_rng(1)
    n = 24 * 14
    bursty = np.where(rng.random(n) < 0.1, rng.integers(1, 50, n), 0).astype(float)  # mostly zero counts
    trend = np.linspace(0, 1e12, n) + 1e8 * rng.standard_normal(n)  # a filling volume
    flat = np.full(n, 7.0)
    step = np.r_[np.full(n - 5, 100.0), np.full(5, 180.0)]  # a quota raised near the end
    for row in (bursty, trend, flat, step):
        assert not outlier_mask(row).any()
    storage = make_storage_dataset(n_series=48, days=30, seed=0).panel.values  # bursts of writes and deletes
    assert not any(outlier_mask(r).any() for r in storage)
    flat[100] = 1e15  # but a flat series with one absurd sample has one
    assert outlier_mask(flat).tolist().count(True) == 1
