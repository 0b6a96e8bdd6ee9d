"""What ``foresight run --local`` and the demo print is true: values in the metric's unit (not bytes
for a CPU percentage), columns named for the horizons and the threshold they show, data quality and
the StaleData condition in the status, and progress lines that say how many fits really run."""

from __future__ import annotations

import numpy as np
import pytest
from foresight.contract.forecast import DataQualityReport
from foresight.forecast.pipeline import _candidate_message
from foresight.forecast.result import RunResult
from foresight.forecast.threshold import ThresholdResult
from foresight.run.report import format_backtest, format_forecasts, format_status, format_value
from foresight.timeseries import Forecast, Panel

from tests.unit.forecast.test_pipeline import NOW, STEP


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (3 * 2**30, "bytes", "3.00GiB"),
        (512.0, "bytes", "512B"),
        (87.25, "percent", "87.2%"),
        (0.8725, "ratio", "87.2%"),
        (5400.0, "seconds", "1h30m"),
        (0.25, "seconds", "0.25s"),
        (12.5, "requests", "12.5 requests"),
        (3 * 2**30, None, "3.221e+09"),
        (float("nan"), "bytes", "-"),
    ],
)
def test_values_are_printed_in_the_unit_the_task_names(value: float, unit: str | None, text: str) -> None:
    assert format_value(value, unit) == text


def result(capacity: bool = True) -> RunResult:
    keys = [{"host": "a"}, {"host": "b"}]
    values = np.vstack([np.linspace(40, 80, 48), np.full(48, 20.0)])
    cap = np.array([100.0, 0.0]) if capacity else None
    panel = Panel(start=NOW - 47 * STEP, step=STEP, keys=keys, values=values, capacity=cap)
    point = np.vstack([np.linspace(81, 99, 24), np.full(24, 20.0)])
    fc = Forecast(origin=NOW, step=STEP, keys=keys, point=point, lower=point - 5, upper=point + 5,
                  model=["linear", "naive"])  # fmt: skip
    threshold = ThresholdResult(
        np.array([90.0, np.nan]), np.array([9 * 3600.0, np.nan]), np.array([3600.0, np.nan])
    )
    quality = DataQualityReport(
        series=2, stale_series=1, stale_message="1 of 2 series have had no sample ...",
        invalid_capacity_series=1, warnings=["1 series have no usable capacity ..."],
    )  # fmt: skip
    return RunResult("Ready", "ForecastsWritten", "2 series forecast", forecast=fc, panel=panel,
                     threshold=threshold if capacity else None, data_quality=quality)  # fmt: skip


def test_a_cpu_percentage_is_printed_as_a_percentage_with_the_tasks_horizons_and_ratio() -> None:
    text = format_forecasts(result(), horizons=["1h", "6h", "24h"], unit="percent", ratio=0.9)
    header, first, second = text.splitlines()
    assert header.split() == ["SERIES", "LAST", "USED%", "FORECAST+1h", "FORECAST+6h", "FORECAST+24h",
                              "TIME-TO-90%", "EARLIEST", "(upper)", "MODEL"]  # fmt: skip
    assert first.split()[:6] == ["host=a", "80.0%", "80.0", "81.0%", "84.9%", "99.0%"]
    assert "GiB" not in text and "TiB" not in text
    # host=b has no usable capacity: no share of it, no time to threshold (never "now").
    assert second.split()[:3] == ["host=b", "20.0%", "-"] and second.split()[-3:] == ["-", "-", "naive"]


def test_without_a_threshold_there_are_no_threshold_columns() -> None:
    text = format_forecasts(result(capacity=False), horizons=["6h"], unit=None)
    assert text.splitlines()[0].split() == ["SERIES", "LAST", "FORECAST+6h", "MODEL"]
    assert "80" in text and "B" not in text.splitlines()[1]


def test_the_backtest_mae_is_in_the_unit() -> None:
    from foresight.forecast.result import ModelScore

    res = RunResult("Ready", "ForecastsWritten", "", backtest=[ModelScore("ets", 0.5, 2.5)])
    assert "2.5%" in format_backtest(res, unit="percent")
    assert "2.5 requests" in format_backtest(res, unit="requests")


def test_status_shows_the_data_quality_the_stale_condition_and_its_warnings() -> None:
    text = format_status(result(), name="cpu", namespace="ops", now=float(NOW))
    assert "Data Quality:       2 series; missing points 0, late 0, stale 1" in text
    assert "unusable capacity 1" in text
    assert "Type: StaleData   Status: True   Reason: SourceDataStale" in text
    assert "1 of 2 series have had no sample" in text and "- 1 series have no usable capacity" in text


def test_progress_lines_say_how_many_fits_a_backtest_makes() -> None:
    cheap = {"model": "theta", "index": 1, "of": 2, "folds": 3}
    assert _candidate_message("candidate", cheap) == "backtest 1/2: theta (3 folds, fitted at each)"
    assert _candidate_message("fold", {"model": "theta", "fold": 2, "of": 3}) == "  theta fold 2/3"
    net = {"model": "lstm", "index": 2, "of": 2, "folds": 3}
    assert (
        _candidate_message("candidate", net)
        == "backtest 2/2: lstm (3 folds, trained once, then predicting from each)"
    )
    # The network's backtest trains once (backtest.py): its one "fold" event is that training.
    line = _candidate_message("fold", {"model": "lstm", "fold": 1, "of": 1}, folds=3)
    assert line == "  lstm: one training for all 3 folds, on the history before the first"
    assert "1/1" not in line


def test_status_shows_the_bands_coverage_and_the_alert_rule_with_its_evidence_or_why_none() -> None:
    bands = {"level": 0.8, "coverage": [{"horizon": "1h", "coverage": 0.81}, {"horizon": "6h"}]}
    chosen = {"rule": "probability>=0.6", "within": "6h", "precision": 0.86, "recall": 0.92,
              "events": 13, "decisions": 1440, "reason": "highest recall with precision >= 0.8"}  # fmt: skip
    ready = RunResult("Ready", "ForecastsWritten", "ok", bands=bands, alert=chosen)
    text = format_status(ready, name="t", namespace="n", now=NOW)
    assert "level 0.8; out-of-sample coverage 1h 0.81\n" in text  # 6h has no measurement: left out
    assert "rule probability>=0.6 within 6h; backtest: precision 0.86, recall 0.92, 13 real" in text
    default = {"rule": "probability>=0.5", "within": "6h", "events": 3, "decisions": 138,
               "reason": "fewer than 5"}  # fmt: skip
    one_fold = {"level": 0.8, "coverage": [{"horizon": "1h"}]}
    ready = RunResult("Ready", "ForecastsWritten", "ok", bands=one_fold, alert=default)
    text = format_status(ready, name="t", namespace="n", now=NOW)
    assert "coverage not measured (one backtest fold)" in text
    assert "precision and recall unknown, 3 real crossing(s) in 138 decisions" in text
    assert "Reason:           fewer than 5" in text
