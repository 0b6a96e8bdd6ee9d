"""The operator's ``/metrics`` gauges of a ForecastTask: last train time and backtest error per model.

:class:`ForecastTaskMetrics` is fed the status a reconcile wrote; what is asserted is what a scrape
of the operator's registry would show, including that a task's series go when it is deleted and a
model that left ``status.backtest`` loses its series.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from foresight_operator.handlers.forecasttask.gauges import ForecastTaskMetrics
from prometheus_client import CollectorRegistry, generate_latest

TRAINED = datetime(2026, 3, 1, 6, 15, 10, tzinfo=UTC)


def status(**extra: Any) -> dict[str, Any]:
    return {
        "phase": "Ready",
        "seriesCount": 4,
        "lastTrainTime": "2026-03-01T06:15:10Z",
        "lastPredictTime": "2026-03-01T06:30:00Z",
        "backtest": [
            {"model": "auto", "mase": 0.61, "mae": 1.5},
            {"model": "linear", "mase": 1.4},  # no MAE reported: no series for it
            {"model": "seasonal_naive", "mase": 0.9, "mae": 2.25},
        ],
        **extra,
    }


def sample(reg: CollectorRegistry, name: str, **labels: str) -> float | None:
    return reg.get_sample_value(name, {"namespace": "sre", "name": "disk", **labels})


def test_last_train_time_and_backtest_errors_per_model_are_exported_and_removed_with_the_task() -> None:
    reg = CollectorRegistry()
    metrics = ForecastTaskMetrics(reg)
    metrics.record("sre", "disk", status(), queued=0)
    metrics.record("sre", "other", status(backtest=[{"model": "ets", "mase": 2.0, "mae": 3.0}]), queued=0)

    assert sample(reg, "foresight_forecasttask_last_train_timestamp_seconds") == TRAINED.timestamp()
    err = "foresight_forecasttask_backtest_error"
    assert sample(reg, err, model="auto", metric="mase") == 0.61
    assert sample(reg, err, model="auto", metric="mae") == 1.5
    assert sample(reg, err, model="linear", metric="mase") == 1.4
    assert sample(reg, err, model="linear", metric="mae") is None
    assert sample(reg, err, model="seasonal_naive", metric="mae") == 2.25
    text = generate_latest(reg).decode()
    assert "# TYPE foresight_forecasttask_backtest_error gauge" in text
    assert (
        'foresight_forecasttask_backtest_error{metric="mase",model="auto",name="disk",namespace="sre"}'
        in text
    )

    # A retrain whose backtest no longer has a model drops that model's series.
    metrics.record("sre", "disk", status(backtest=[{"model": "auto", "mase": 0.5, "mae": 1.25}]), queued=0)
    assert sample(reg, err, model="auto", metric="mase") == 0.5
    assert sample(reg, err, model="seasonal_naive", metric="mase") is None
    assert sample(reg, err, model="linear", metric="mase") is None

    # Deleted: none of the task's series remain; the other task's do.
    metrics.record("sre", "disk", None, 0)
    text = generate_latest(reg).decode()
    assert 'name="disk"' not in text
    assert sample(reg, "foresight_forecasttask_last_train_timestamp_seconds") is None
    assert (
        reg.get_sample_value(err, {"namespace": "sre", "name": "other", "model": "ets", "metric": "mae"})
        == 3.0
    )


def test_a_task_that_never_trained_has_no_train_time_or_backtest_series() -> None:
    reg = CollectorRegistry()
    ForecastTaskMetrics(reg).record("sre", "disk", {"phase": "Pending", "consecutiveFailures": 0}, queued=1)
    assert sample(reg, "foresight_forecasttask_runs_queued") == 1
    assert sample(reg, "foresight_forecasttask_last_train_timestamp_seconds") is None
    assert "foresight_forecasttask_backtest_error{" not in generate_latest(reg).decode()
