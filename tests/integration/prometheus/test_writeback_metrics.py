"""The pure gauge builder of forecast write-back (no server needed, so no integration marker)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from foresight.forecast.writeback import (
    BacktestError,
    exposition,
    forecast_metrics,
    realised_errors,
)
from foresight.prometheus.labels import series_labels
from foresight.timeseries import Forecast, Panel
from prometheus_client.parser import text_string_to_metric_families

ORIGIN = 1_700_000_000 - 1_700_000_000 % 3600
STEP = 3600


def make_forecast(
    keys: list[dict[str, str]], point: np.ndarray, spread: float = 5.0, origin: int = ORIGIN
) -> Forecast:
    return Forecast(
        origin=origin,
        step=STEP,
        keys=keys,
        point=point,
        lower=point - spread,
        upper=point + spread,
        model=["test"] * len(keys),
    )


def by_name(families: list) -> dict:  # type: ignore[type-arg]
    return {f.name: f for f in families}


def test_series_labels_are_sanitised_and_prefixed_on_clash() -> None:
    assert series_labels(
        {"namespace": "team-a", "job": "x", "user": "u", "storage-type": "ssd", "0x": "v"}
    ) == {
        "series_namespace": "team-a",
        "series_job": "x",
        "user": "u",
        "storage_type": "ssd",
        "_0x": "v",
    }
    assert series_labels({"__name__": "m", "__meta": "v"}) == {"series__meta": "v"}
    with pytest.raises(ValueError, match="collide"):
        series_labels({"a-b": "1", "a_b": "2"})


def test_forecast_gauges_carry_series_task_namespace_and_horizon() -> None:
    point = np.tile(np.arange(1.0, 25.0), (2, 1)) * np.array([[1.0], [10.0]])
    f = make_forecast([{"user": "alice", "namespace": "team-a"}, {"user": "bob"}], point)
    fams = by_name(forecast_metrics(f, task="quota", namespace="ns1", horizons=["1h", "6h", "24h"]))
    samples = {(s.labels["user"], s.labels["horizon"]): s for s in fams["foresight_forecast"].samples}
    s = samples[("alice", "6h")]
    assert s.value == 6.0
    assert s.labels == {
        "user": "alice",
        "series_namespace": "team-a",
        "task": "quota",
        "namespace": "ns1",
        "horizon": "6h",
    }
    assert samples[("bob", "24h")].value == 240.0
    # Every sample of a family has the same label names (the Pushgateway insists).
    assert samples[("bob", "1h")].labels["series_namespace"] == ""
    lower = {
        (x.labels["user"], x.labels["horizon"]): x.value for x in fams["foresight_forecast_lower"].samples
    }
    assert lower[("alice", "6h")] == 1.0
    with pytest.raises(ValueError, match="multiples of the step"):
        forecast_metrics(f, task="t", namespace="n", horizons=["30m"])
    with pytest.raises(ValueError, match="within"):
        forecast_metrics(f, task="t", namespace="n", horizons=["48h"])


def test_time_to_threshold_is_inf_when_not_crossed_and_zero_when_over() -> None:
    point = np.vstack([np.full(24, 10.0), np.arange(1.0, 25.0) * 10, np.full(24, 10.0)])
    f = make_forecast([{"user": "a"}, {"user": "b"}, {"user": "c"}], point, spread=0.0)
    fams = by_name(
        forecast_metrics(
            f,
            task="t",
            namespace="n",
            horizons=["1h"],
            threshold=np.array([100.0, 100.0, 5.0]),
            actual_latest=np.array([10.0, 0.0, 20.0]),
        )
    )
    ttt = {
        (s.labels["user"], s.labels["bound"]): s.value
        for s in fams["foresight_time_to_threshold_seconds"].samples
    }
    assert ttt[("a", "point")] == math.inf and ttt[("a", "upper")] == math.inf
    assert ttt[("b", "point")] == 10 * STEP  # reaches 100 exactly at step 10
    assert ttt[("c", "point")] == 0.0
    text = exposition(list(fams.values())).decode()
    assert 'foresight_time_to_threshold_seconds{bound="point",namespace="n",task="t",user="a"} +Inf' in text
    parsed = {f.name for f in text_string_to_metric_families(text)}
    assert {"foresight_forecast", "foresight_time_to_threshold_seconds"} <= parsed


def test_anomaly_errors_backtest_and_last_run() -> None:
    keys = [{"user": "a"}, {"user": "b"}]
    prev = make_forecast(keys, np.full((2, 24), 100.0), spread=5.0, origin=ORIGIN - 3 * STEP)
    f = make_forecast(keys[::-1], np.full((2, 24), 100.0))  # rows in another order than prev
    fams = by_name(
        forecast_metrics(
            f,
            task="t",
            namespace="n",
            horizons=["1h"],
            actual_latest=np.array([103.0, 120.0]),
            previous=prev,
            realised_errors={"1h": {"mae": np.array([1.5, np.nan])}},
            backtest_errors=[BacktestError("ets", "mase", "6h", 0.8)],
            last_run={"predict": 1234.0},
        )
    )
    anomaly = {s.labels["user"]: s.value for s in fams["foresight_anomaly"].samples}
    assert anomaly == {"b": 0.0, "a": 1.0}
    err = fams["foresight_forecast_error"].samples
    assert len(err) == 1 and err[0].labels["user"] == "b" and err[0].labels["metric"] == "mae"
    bt = fams["foresight_backtest_error"].samples[0]
    assert bt.labels == {"task": "t", "namespace": "n", "model": "ets", "metric": "mase", "horizon": "6h"}
    assert fams["foresight_last_run_timestamp_seconds"].samples[0].labels["kind"] == "predict"


def test_realised_errors_compare_past_forecasts_with_actuals() -> None:
    past = make_forecast([{"user": "a"}], np.array([[110.0, 120.0, 130.0]]), origin=ORIGIN)
    actual = Panel(
        start=ORIGIN,
        step=STEP,
        keys=[{"user": "a"}, {"user": "z"}],
        values=np.array([[0.0, 100.0, 150.0, np.nan], [1.0, 1.0, 1.0, 1.0]]),
    )
    errs = realised_errors([past], actual, ["1h", "2h", "3h"])
    assert errs["1h"]["mae"][0] == 10.0 and errs["1h"]["mape"][0] == pytest.approx(0.1)
    assert errs["2h"]["mae"][0] == 30.0
    assert np.isnan(errs["3h"]["mae"][0]) and np.isnan(errs["1h"]["mae"][1])
