"""The ForecastTask pipeline: one run end to end against the in-memory Prometheus stand-in.

A real Prometheus is not the point here (tests/integration/forecast covers it); these tests pin
the orchestration: what is trained, saved, loaded, written back and how bad input is reported.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from foresight.api.forecasttask import Bands, ForecastTaskSpec
from foresight.artifacts import LocalArtifactStore
from foresight.forecast.pipeline import run_forecast_task
from foresight.forecast.result import RunEvent, RunResult
from foresight.prometheus import PrometheusClient, PrometheusUnavailable, RetryPolicy
from foresight.run.memory import MemoryPrometheus
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

STEP = 3600
NOW = 1_770_000_000 // STEP * STEP  # the last observed hour
DAYS = 8


def history() -> MemoryPrometheus:
    """Usage for 4 (user, cluster) series over DAYS days: three flat-ish daily cycles at ~80% of
    a 100 quota, and one steady ramp that reaches 95 about 5 h after NOW."""
    ts = NOW - STEP * np.arange(DAYS * 24)[::-1]
    hours = np.arange(ts.size)
    prom = MemoryPrometheus()
    rng = np.random.default_rng(0)
    for i, (user, cluster) in enumerate([("alice", "east"), ("bob", "east"), ("carol", "west")]):
        values = 80 + 2 * np.sin(2 * np.pi * hours / 24) + 0.1 * rng.standard_normal(ts.size) + i
        prom.add("used_bytes", {"user": user, "cluster": cluster, "instance": "a"}, ts, values)
        prom.add("quota_bytes", {"user": user, "cluster": cluster}, ts, np.full(ts.size, 100.0))
    ramp = 95.0 - 0.2 * (ts[-1] - ts) / STEP - 1.0  # 94 at NOW, +0.2 per hour: 95 at NOW + 5h
    prom.add("used_bytes", {"user": "dave", "cluster": "west", "instance": "a"}, ts, ramp)
    prom.add("quota_bytes", {"user": "dave", "cluster": "west"}, ts, np.full(ts.size, 100.0))
    return prom


def spec(**overrides: Any) -> ForecastTaskSpec:
    doc: dict[str, Any] = {
        "source": {"query": "used_bytes", "lookback": "168h", "step": "1h", "groupBy": ["user", "cluster"]},
        "model": {"type": "auto", "candidates": ["naive", "seasonal_naive", "linear"], "backtestFolds": 2},
        "horizon": "12h",
        "threshold": {"capacity": {"query": "quota_bytes"}, "ratio": 0.95},
        "output": {"horizons": ["1h", "6h", "12h"]},
        "schedule": {"retrainEvery": "24h"},
    }
    for path, value in overrides.items():
        node = doc
        *parents, leaf = path.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return ForecastTaskSpec.model_validate(doc)


class Recorder:
    """A publisher that keeps what it was asked to push."""

    def __init__(self) -> None:
        self.pushes: list[tuple[dict[str, str], str]] = []

    def __call__(self, registry: CollectorRegistry, key: Mapping[str, str]) -> None:
        from prometheus_client import generate_latest

        self.pushes.append((dict(key), generate_latest(registry).decode()))


def run(
    task: ForecastTaskSpec,
    store: LocalArtifactStore | None,
    *,
    prom: PrometheusClient | None = None,
    publisher: Any = None,
    now: float = NOW + 60,
    mode: Any = "auto",
    events: list[RunEvent] | None = None,
) -> RunResult:
    return run_forecast_task(
        task,
        name="quota",
        namespace="team-a",
        prometheus=prom if prom is not None else history(),
        pushgateway=publisher,
        store=store,
        clock=lambda: now,
        progress=events.append if events is not None else None,
        mode=mode,
    )


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    out = []
    for fam in text_string_to_metric_families(text):
        out += [(dict(s.labels), s.value) for s in fam.samples if s.name == name]
    return out


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "artifacts")


def test_train_run_backtests_saves_and_pushes_forecasts_with_time_to_threshold(
    store: LocalArtifactStore,
) -> None:
    pub = Recorder()
    events: list[RunEvent] = []
    result = run(spec(), store, publisher=pub, mode="train", events=events)

    assert result.ok, result.message
    assert (result.phase, result.reason, result.mode) == ("Ready", "ForecastsWritten", "train")
    assert result.series_count == 4
    assert result.model is not None and result.model.startswith("auto(")
    scores = {s.model: s for s in result.backtest}
    assert {"auto", "naive", "seasonal_naive", "linear"} <= set(scores)
    assert scores["auto"].mase is not None
    # auto's score is judged on folds its choice was not made on (nested: fold 1 has no earlier fold
    # to choose on), not on the backtest that chose it (issue 16: no winner's curse in status).
    # Every row is scored on those same folds 2..F, so auto compares like for like with the others.
    honest = result.backtest_results["auto"]
    folds = result.backtest_results["naive"].actual.shape[1]
    assert honest.point.shape[1] == folds == spec().model.backtest_folds - 1
    assert np.isfinite(honest.point).all()
    assert scores["auto"].mase == pytest.approx(honest.summary()["mase"])
    assert {r.origins[0] for r in result.backtest_results.values()} == {honest.origins[0]}

    # Pushed once, as the task's group, and only after everything was computed.
    assert len(pub.pushes) == 1
    key, text = pub.pushes[0]
    assert key == {"namespace": "team-a", "task": "quota"}
    assert text == result.exposition.decode()
    ttt = {(s["user"], s["bound"]): v for s, v in samples(text, "foresight_time_to_threshold_seconds")}
    assert 3 * 3600 < ttt[("dave", "point")] < 7 * 3600  # the ramp reaches 95 about 5 h out
    assert ttt[("alice", "point")] == float("inf")
    fc = samples(text, "foresight_forecast")
    assert {s["horizon"] for s, _ in fc} == {"1h", "6h", "12h"}
    assert all(s["task"] == "quota" and s["namespace"] == "team-a" for s, _ in fc)
    assert "instance" not in fc[0][0]  # grouped by user, cluster: other labels aggregated away
    bt = samples(text, "foresight_backtest_error")
    assert {s["model"] for s, _ in bt} >= {"auto", "linear", "seasonal_naive"}

    # The model directory is complete (manifest) and latest.json points at it.
    latest = json.loads(store.get_bytes("forecasttasks/team-a/quota/latest.json"))
    assert result.artifact_uri == latest["uri"]
    assert store.has_dir(f"forecasttasks/team-a/quota/{latest['version']}")
    assert store.exists("forecasttasks/team-a/quota/forecast.json")
    kinds = [e.kind for e in events]
    assert kinds[0] == "ingest" and "candidate" in kinds and "fold" in kinds and kinds[-1] == "done"


def test_predict_mode_reuses_the_saved_model_and_flags_against_the_previous_forecast(
    store: LocalArtifactStore,
) -> None:
    first = run(spec(), store, publisher=Recorder(), mode="train", now=NOW - STEP + 60)
    assert first.ok, first.message
    pub = Recorder()
    events: list[RunEvent] = []
    second = run(spec(), store, publisher=pub, mode="predict", events=events)

    assert second.ok, second.message
    assert second.mode == "predict"
    assert second.artifact_uri == first.artifact_uri
    assert second.last_train_time == first.last_train_time
    assert {s.model for s in second.backtest} == {s.model for s in first.backtest}
    assert not any(e.kind in ("train", "candidate") for e in events)
    assert any(e.kind == "loaded" for e in events)
    text = pub.pushes[0][1]
    # The first forecast (made an hour earlier) covers now: anomaly flag and realised error exist.
    assert {s["user"] for s, _ in samples(text, "foresight_anomaly")} == {"alice", "bob", "carol", "dave"}
    errs = samples(text, "foresight_forecast_error")
    assert {(s["horizon"], s["metric"]) for s, _ in errs} == {("1h", "mae"), ("1h", "mape")}


def test_auto_mode_trains_only_when_the_model_is_missing_stale_or_for_another_spec(
    store: LocalArtifactStore,
) -> None:
    assert run(spec(), store, mode="auto").mode == "train"  # nothing saved yet
    assert run(spec(), store, mode="auto", now=NOW + 600).mode == "predict"  # fresh model
    assert run(spec(horizon="6h", **{"output.horizons": ["1h"]}), store, mode="auto").mode == "train"
    stale = run(spec(horizon="6h", **{"output.horizons": ["1h"]}), store, mode="auto", now=NOW + 25 * 3600)
    assert stale.mode == "train"  # older than retrainEvery (24h)


def test_predict_without_a_saved_model_says_to_train_first(store: LocalArtifactStore) -> None:
    result = run(spec(), store, mode="predict")
    assert (result.phase, result.reason) == ("Failed", "RunFailed")
    assert "no trained model" in result.message and "mode train" in result.message
    assert not result.retryable


@pytest.mark.parametrize(
    ("overrides", "reason", "needles"),
    [
        ({"source.query": "sum(used_bytes"}, "PromQLError", ["sum(used_bytes"]),
        ({"source.query": "no_such_metric"}, "NoSeries", ["no_such_metric", "returned no series"]),
        ({"limits.maxSeries": 2}, "TooManySeries", ["gives 4 series", "cap of 2"]),
        ({"limits.minHistoryPoints": 500}, "InsufficientHistory", ["only 169 points", "500 are needed"]),
        ({"model.backtestFolds": 20}, "InsufficientHistory", ["169 steps", "20 backtest folds"]),
    ],
)
def test_bad_input_becomes_a_failed_result_with_the_condition_reason(
    store: LocalArtifactStore, overrides: dict[str, Any], reason: str, needles: list[str]
) -> None:
    pub = Recorder()
    result = run(spec(**overrides), store, publisher=pub, mode="train")
    assert (result.phase, result.reason) == ("Failed", reason)
    for needle in needles:
        assert needle in result.message
    assert not result.retryable
    assert pub.pushes == []
    assert not store.exists("forecasttasks/team-a/quota/forecast.json")


def test_unreachable_prometheus_is_a_retryable_failure(store: LocalArtifactStore) -> None:
    client = PrometheusClient(
        "http://127.0.0.1:9", retry=RetryPolicy(attempts=2), sleep=lambda s: None, timeout=2
    )
    result = run(spec(), store, prom=client, mode="train")
    assert (result.phase, result.reason, result.retryable) == ("Failed", "PrometheusUnavailable", True)
    assert "127.0.0.1:9" in result.message


def test_failed_push_is_retryable_and_leaves_no_forecast_behind(store: LocalArtifactStore) -> None:
    def down(registry: CollectorRegistry, key: Mapping[str, str]) -> None:
        raise PrometheusUnavailable("http://127.0.0.1:9091", "connection refused", attempts=4)

    result = run(spec(), store, publisher=down, mode="train")
    assert (result.phase, result.reason, result.retryable) == ("Failed", "PushgatewayUnavailable", True)
    assert result.series_count == 4
    # The previous forecast (the anomaly reference) is only replaced after a successful push.
    assert not store.exists("forecasttasks/team-a/quota/forecast.json")


def test_termination_message_stays_parseable_under_the_kubernetes_limit() -> None:
    from foresight.forecast.result import ModelScore

    result = RunResult(
        "Ready", "ForecastsWritten", "x" * 5000, series_count=3, model="auto(ets:3)",
        backtest=[ModelScore(f"m{i}", float(i), float(i)) for i in range(40)],
        warnings=["w" * 300] * 30, artifact_uri="file:///a/b",
    )  # fmt: skip
    text = result.as_message().termination_message()
    assert len(text.encode()) <= 4096
    doc = json.loads(text)
    assert doc["phase"] == "Ready" and doc["seriesCount"] == 3 and doc["artifactUri"] == "file:///a/b"
    assert doc["warningCount"] == 30
    assert [r["model"] for r in doc["backtest"]] == ["m0", "m1", "m2", "m3"]


def test_neural_auto_model_round_trips_through_the_store(store: LocalArtifactStore) -> None:
    task = spec(
        **{
            "model.candidates": ["seasonal_naive", "lstm"],
            "model.hyperparameters": {"inputWindow": 24, "hiddenSize": 8, "layers": 1, "epochs": 2,
                                      "windowsPerEpoch": 200, "batchSize": 64},
        }
    )  # fmt: skip
    events: list[RunEvent] = []
    trained = run(task, store, mode="train", events=events)
    assert trained.ok, trained.message
    epochs = [e for e in events if e.kind == "epoch"]
    assert epochs and epochs[0].data["model"] == "lstm" and epochs[0].data["epochs"] == 2
    predicted = run(task, store, mode="predict")
    assert predicted.ok, predicted.message
    assert trained.forecast is not None and predicted.forecast is not None
    assert predicted.forecast.model == trained.forecast.model
    np.testing.assert_allclose(predicted.forecast.point, trained.forecast.point, rtol=1e-6)


def test_bands_exhaustion_and_the_alert_go_out_with_every_prediction(store: LocalArtifactStore) -> None:
    pub = Recorder()
    trained = run(spec(**{"threshold.alert.within": "6h"}), store, publisher=pub, mode="train")
    assert trained.ok, trained.message
    text = pub.pushes[-1][1]
    prob = {(s["user"], s["within"]): v for s, v in samples(text, "foresight_exhaustion_probability")}
    assert {w for _, w in prob} == {"1h", "6h", "12h"}
    assert prob[("dave", "12h")] > 0.5 and prob[("alice", "12h")] < 0.05  # dave ramps to 95 in ~5 h
    assert prob[("dave", "1h")] <= prob[("dave", "6h")] <= prob[("dave", "12h")]
    alerts = {s["user"]: (s, v) for s, v in samples(text, "foresight_exhaustion_alert")}
    assert alerts["alice"][1] == 0.0 and alerts["alice"][0]["within"] == "6h"
    assert alerts["dave"][0]["rule"] == trained.alert["rule"]  # type: ignore[index]
    coverage = {s["horizon"]: v for s, v in samples(text, "foresight_band_coverage")}
    assert set(coverage) <= {"1h", "6h", "12h"} and all(0 <= v <= 1 for v in coverage.values())
    assert trained.bands is not None and trained.bands["level"] == 0.8
    assert [c["horizon"] for c in trained.bands["coverage"]] == ["1h", "6h", "12h"]
    # Two folds over four series hold no crossing within 6 h: the default rule, and the status says why.
    assert trained.alert is not None and trained.alert["rule"] == "probability>=0.5"
    assert "fewer than" in trained.alert["reason"] and "precision" not in trained.alert
    fc = trained.forecast
    assert fc is not None and np.all(fc.lower <= fc.point) and np.all(fc.point <= fc.upper)

    # A later predict-only run uses the calibration and the rule saved with the model.
    predicted = run(spec(**{"threshold.alert.within": "6h"}), store, publisher=pub, mode="predict")
    assert predicted.ok and predicted.alert == trained.alert and predicted.bands == trained.bands
    assert samples(pub.pushes[-1][1], "foresight_exhaustion_alert")


def test_one_backtest_fold_measures_no_coverage_and_status_says_nothing_rather_than_null() -> None:
    # One fold has no other fold to calibrate on: no coverage key (the CRD rejects a null).
    result = run(spec(**{"model.backtestFolds": 1}), None, mode="train")
    assert result.ok and result.bands is not None
    assert all("coverage" not in c for c in result.bands["coverage"]), result.bands
    Bands.model_validate(result.bands)
