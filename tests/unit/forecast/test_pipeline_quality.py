"""Data it refuses to misread, through one whole run (the pipeline against the in-memory Prometheus):
what is written back, what status carries, and what each class changes in the numbers.

The same classes through ``foresight run --local`` against a real Prometheus are in
tests/integration/forecast/test_forecast_data_quality.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from foresight.api.output_size import gauges_per_series
from foresight.artifacts import LocalArtifactStore
from foresight.contract.forecast import EXIT_BAD_INPUT, ForecastRunResult
from foresight.contract.termination import TERMINATION_MESSAGE_LIMIT
from foresight.forecast.pipeline import run_forecast_task
from foresight.forecast.result import RunResult
from foresight.run.local import exit_code
from foresight.run.memory import MemoryPrometheus
from foresight.timeseries import Forecast
from prometheus_client.parser import text_string_to_metric_families

from tests.unit.forecast.test_pipeline import NOW, STEP, Recorder, history, run, samples, spec

USERS = {"alice", "bob", "carol", "dave"}


def pushed(result: RunResult, pub: Recorder) -> str:
    assert result.ok, result.message
    (_, text), *_ = pub.pushes
    return text


def with_series(
    prom: MemoryPrometheus, user: str, values: Any, *, end: int = NOW, quota: float = 100.0
) -> None:
    values = np.asarray(values, dtype=np.float64)
    ts = end - STEP * np.arange(values.size)[::-1]
    prom.add("used_bytes", {"user": user, "cluster": "north", "instance": "a"}, ts, values)
    prom.add("quota_bytes", {"user": user, "cluster": "north"}, ts, np.full(values.size, quota))


def test_a_stale_series_gets_no_forecast_from_now_only_its_stale_flag_and_the_condition_message() -> None:
    prom = history()
    with_series(prom, "erin", 70 + np.zeros(150), end=NOW - 6 * STEP)  # stopped 6 h ago
    pub = Recorder()
    result = run(spec(), None, prom=prom, publisher=pub)
    text = pushed(result, pub)
    assert {s["user"] for s, _ in samples(text, "foresight_forecast")} == USERS
    assert "erin" not in {s["user"] for s, _ in samples(text, "foresight_time_to_threshold_seconds")}
    stale = {s["user"]: v for s, v in samples(text, "foresight_data_stale")}
    assert stale == {"alice": 0.0, "bob": 0.0, "carol": 0.0, "dave": 0.0, "erin": 1.0}
    assert "1 series with stale data got no forecast" in result.message
    quality = result.summary()["dataQuality"]
    assert (quality["series"], quality["staleSeries"]) == (5, 1)
    assert "user=erin,cluster=north (newest sample " in quality["staleMessage"]
    # The pod's termination message carries it to the operator, within the kubelet's limit.
    message = result.as_message().termination_message()
    assert len(message.encode()) <= TERMINATION_MESSAGE_LIMIT
    parsed = ForecastRunResult.from_termination_message(message)
    assert parsed is not None and parsed.data_quality is not None
    assert parsed.data_quality.stale_series == 1 and "erin" in (parsed.data_quality.stale_message or "")
    # Nor is a trajectory from now remote-written for it.
    written: list[Forecast] = []
    task = spec(**{"output.remoteWriteUrl": "http://prom:9090/api/v1/write"})
    done = run_forecast_task(
        task, name="quota", namespace="team-a", prometheus=prom, clock=lambda: NOW + 60,
        remote_writer=lambda fc: written.append(fc) or 0,
    )  # fmt: skip
    assert done.ok and [sorted(k["user"] for k in fc.keys) for fc in written] == [sorted(USERS)]


def test_a_zero_negative_or_missing_capacity_gives_no_time_to_threshold_never_a_pushed_zero() -> None:
    prom = history()
    with_series(prom, "zed", 60 + np.zeros(169), quota=0.0)
    with_series(prom, "neg", 60 + np.zeros(169), quota=-10.0)
    pub = Recorder()
    result = run(spec(), None, prom=prom, publisher=pub)
    ttt = samples(pushed(result, pub), "foresight_time_to_threshold_seconds")
    assert {s["user"] for s, _ in ttt} == USERS
    assert result.threshold is not None and np.isnan(result.threshold.seconds[-2:]).all()
    quality = result.summary()["dataQuality"]
    assert quality["invalidCapacitySeries"] == 2
    assert any(
        "user=neg,cluster=north (-10)" in w and "user=zed,cluster=north (0)" in w for w in quality["warnings"]
    )


def test_forecasts_and_bounds_stay_in_the_value_range() -> None:
    prom = history()
    with_series(prom, "fall", np.linspace(40, 0.5, 169))  # heading below zero
    pub = Recorder()
    result = run(spec(**{"source.valueRange": {"min": 0}}), None, prom=prom, publisher=pub)
    text = pushed(result, pub)
    for family in ("foresight_forecast", "foresight_forecast_lower", "foresight_forecast_upper"):
        assert min(v for _, v in samples(text, family)) >= 0.0, family
    assert result.summary()["dataQuality"]["clippedSeries"] >= 1
    unclipped = run(spec(), None, prom=prom, publisher=Recorder())
    assert unclipped.forecast is not None and unclipped.forecast.lower.min() < 0  # what the clip prevented


def test_one_absurd_sample_changes_no_other_series_and_not_its_own_alert() -> None:
    clean = run(spec(), None)
    prom = history()
    ts = NOW - STEP * np.arange(8 * 24)[::-1]
    prom.add(
        "used_bytes", {"user": "alice", "cluster": "east", "instance": "b"}, ts[-20:-19], np.array([1e18])
    )
    spoiled = run(spec(), None, prom=prom)
    assert clean.forecast is not None and spoiled.forecast is not None
    np.testing.assert_allclose(spoiled.forecast.point, clean.forecast.point, rtol=0.05)
    assert spoiled.threshold is not None and np.isinf(spoiled.threshold.seconds[0])  # alice: no crossing
    before = {s.model: s.mase for s in clean.backtest}
    after = {s.model: s.mase for s in spoiled.backtest}
    assert before.keys() == after.keys()
    assert all(abs((after[m] or 0) - (before[m] or 0)) <= 0.05 * (before[m] or 1) for m in before), (
        before,
        after,
    )
    quality = spoiled.summary()["dataQuality"]
    assert quality["outlierSeries"] == 1
    assert any("user=alice,cluster=east (1e+18 at " in w for w in quality["warnings"])


def test_two_series_that_are_one_after_grouping_are_bad_input_with_exit_code_2() -> None:
    result = run(spec(**{"source.aggregation": "none", "source.groupBy": ["cluster"]}), None)
    assert (result.phase, result.reason, result.retryable) == ("Failed", "DuplicateSeries", False)
    assert "cluster=east" in result.message and "source.groupBy" in result.message
    assert "Traceback" not in result.message
    assert exit_code(result) == EXIT_BAD_INPUT


def test_every_step_can_be_exported_and_the_size_rule_counts_exactly_what_is_written(tmp_path: Path) -> None:
    task = spec(**{"output.everyStep": True})
    store = LocalArtifactStore(tmp_path / "store")
    # The steady state: a second run, whose previous forecast gives the anomaly flag and errors.
    assert run(task, store, publisher=Recorder(), mode="train", now=NOW - STEP + 60).ok
    pub = Recorder()
    text = pushed(run(task, store, publisher=pub, mode="predict"), pub)
    assert {s["horizon"] for s, _ in samples(text, "foresight_forecast")} == {f"{h}h" for h in range(1, 13)}
    per_task = {"foresight_backtest_error", "foresight_band_coverage", "foresight_last_run_timestamp_seconds"}
    families = {f.name for f in text_string_to_metric_families(text)} - per_task
    written = sum(len(samples(text, name)) for name in families)
    # foresight_forecast_error exists for a horizon once a forecast made that long ago is in the
    # store (here: 1h, the gap between the runs); the size rule counts it at every horizon (mae,
    # mape), its steady state. Everything else is counted as written.
    errors = len(samples(text, "foresight_forecast_error"))
    assert 0 < errors < 2 * 12 * len(USERS)
    assert written - errors + 2 * 12 * len(USERS) == len(USERS) * gauges_per_series(task)


def test_the_result_carries_the_counts_even_when_all_is_well() -> None:
    doc = run(spec(), None).as_message().to_wire()
    quality = doc["dataQuality"]
    assert quality["series"] == 4 and quality["warnings"] == [] and quality.get("staleMessage") is None
    assert quality["missingPoints"] == 0 and quality["staleSeries"] == 0


def test_an_absurd_sample_in_one_series_does_not_cut_the_global_networks_training_for_the_others() -> None:
    # Unmasked, one absurd value in one series' validation tail dominates the network's validation
    # loss, so early stopping ends training after `patience` epochs for every series (measured: the
    # other series' forecasts moved by 15%). Read as missing, it changes nothing for them.
    net = {"type": "lstm", "backtestFolds": 1, "hyperparameters": {"inputWindow": 24, "hiddenSize": 8,
           "layers": 1, "epochs": 6, "windowsPerEpoch": 300, "batchSize": 64, "patience": 2}}  # fmt: skip
    clean_events: list[Any] = []
    clean = run(spec(model=net), None, events=clean_events, mode="train")
    prom = history()
    ts = NOW - STEP * np.arange(8 * 24)[::-1]
    prom.add("used_bytes", {"user": "alice", "cluster": "east", "instance": "b"}, ts[-6:-5], np.array([1e12]))
    events: list[Any] = []
    spoiled = run(spec(model=net), None, prom=prom, events=events, mode="train")
    assert clean.forecast is not None and spoiled.forecast is not None
    epochs = [e for e in events if e.kind == "epoch"]
    assert len(epochs) == len([e for e in clean_events if e.kind == "epoch"])  # no early stop forced
    np.testing.assert_allclose(spoiled.forecast.point[1:], clean.forecast.point[1:], rtol=0.02)
    assert spoiled.summary()["dataQuality"]["outlierSeries"] == 1


def test_series_whose_labels_are_one_once_written_back_are_bad_input_too() -> None:
    every_label = {"source.aggregation": "none", "source.groupBy": []}
    ts = NOW - STEP * np.arange(169)[::-1]
    prom = MemoryPrometheus()
    prom.add("used_bytes", {"namespace": "x"}, ts, np.full(169, 50.0))
    prom.add("used_bytes", {"series_namespace": "x"}, ts, np.full(169, 60.0))  # written alike
    result = run(spec(**every_label), None, prom=prom)
    assert (result.reason, exit_code(result)) == ("DuplicateSeries", EXIT_BAD_INPUT)
    assert "namespace=x and series_namespace=x get the same labels" in result.message
    prom = MemoryPrometheus()
    prom.add("used_bytes", {"namespace": "x", "series_namespace": "y"}, ts, np.full(169, 50.0))
    result = run(spec(**every_label), None, prom=prom)
    assert (result.reason, exit_code(result)) == ("DuplicateSeries", EXIT_BAD_INPUT)
    assert "cannot be written back as one series" in result.message and "label_replace" in result.message
