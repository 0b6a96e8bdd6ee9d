"""One run of a ForecastTask: ingest -> (backtest + train + save) -> predict -> write back.

This is the single code path behind every way a ForecastTask runs: the Job pod the operator
creates (``foresight run -f task.yaml``), local mode (``foresight run -f task.yaml --local``) and
``foresight demo``. Everything with I/O is passed in (the Prometheus client, the publisher that
pushes to a Pushgateway, the artifact store, the clock, the progress sink), so tests can give an
in-memory Prometheus and a fixed clock.

What a run does:

1. Read ``lookback`` of history at ``step`` (aligned) with :func:`foresight.forecast.ingest.ingest`:
   grouped by ``groupBy``, covariates and per-series capacity included.
2. Train (mode ``train``, or ``auto`` when no usable model is saved, it is older than
   ``retrainEvery``, or the spec changed): a rolling-origin backtest of the model (``auto``
   backtests every candidate), plus ``linear`` (= predict_linear) and ``seasonal_naive`` for
   comparison when they are not already candidates; fit on the full history; save the model
   directory to the artifact store (a manifest-checked directory, then a ``latest.json``
   pointer, so a reader never sees half a model).
3. Predict (mode ``predict`` loads the latest saved model instead of training): forecasts, bounds,
   time-to-threshold, anomaly flag and realised error against the previous run's forecast.
4. Write back only once everything is computed: one Pushgateway PUT replaces the task's group
   (atomic for readers), or, with ``output.mode: scrape``, one atomic put of the same exposition
   to :func:`exposition_key` in the artifact store, which ``foresight serve forecasts``
   (:mod:`foresight.forecast.scrape`) serves; then the forecast is kept in the store for the
   next run's anomaly flag.

Bad input becomes a :class:`RunResult` with ``phase="Failed"`` and a reason from
:class:`foresight.api.forecasttask.ForecastReason`, never an exception; so does a Prometheus or
Pushgateway outage (``retryable=True``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import tempfile
import time as _time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from prometheus_client import CollectorRegistry

from foresight.api.forecasttask import ForecastReason, ForecastTaskSpec
from foresight.artifacts import ArtifactError, ArtifactNotFoundError, ArtifactStore
from foresight.contract.forecast import STORE_PREFIX, ForecastRunResult
from foresight.prometheus.client import PrometheusClient
from foresight.prometheus.errors import (
    InsufficientHistoryError,
    NoSeriesError,
    PrometheusError,
    PrometheusResponseError,
    PrometheusUnavailable,
    PromQLError,
    PushgatewayError,
    TooManySeriesError,
)
from foresight.timeseries import FloatArray, Forecast, Panel

from . import metrics
from .backtest import BacktestResult, backtest
from .ingest import Capacity, ConstantCapacity, IngestResult, QueryCapacity, ingest
from .models._baseline import ffill
from .models.base import EpochReport, Model, get_model, load_model
from .threshold import ThresholdResult, threshold_report
from .writeback import BacktestError, exposition, forecast_metrics, realised_errors, to_registry

__all__ = [
    "COMPARISON_BASELINES",
    "ModelScore",
    "Publisher",
    "RunEvent",
    "RunMode",
    "RunProgress",
    "RunResult",
    "exposition_key",
    "go_duration_seconds",
    "horizon_label",
    "run_forecast_task",
]

log = logging.getLogger(__name__)

RunMode = Literal["train", "predict", "auto"]
COMPARISON_BASELINES: tuple[str, ...] = ("linear", "seasonal_naive")
"""Always backtested next to the task's model, so status shows the bar it must clear."""
NEURAL = ("lstm", "gru", "transformer")
EXPOSITION_FILE = "metrics.txt"

_GO_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_GO_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration_seconds(text: str) -> int:
    """A Go / Kubernetes duration (``"15m"``, ``"1h30m"``, ``"720h"``) in whole seconds."""
    s = text.strip()
    parts = _GO_DURATION.findall(s)
    if not s or "".join(n + u for n, u in parts) != s:
        raise ValueError(f"{text!r} is not a duration like 15m, 1h30m or 720h")
    return round(sum(float(n) * _GO_UNITS[u] for n, u in parts))


def horizon_label(seconds: int) -> str:
    """The ``horizon`` label for a duration: the shortest of ``Nh``, ``Nm``, ``Ns``."""
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


@dataclass(frozen=True)
class RunEvent:
    """Something a person watching the run wants to see (stdout, logs, a progress file)."""

    kind: str
    """``ingest``, ``ingested``, ``train``, ``candidate``, ``fold``, ``epoch``, ``candidate_done``,
    ``candidate_failed``, ``refit``, ``saved``, ``loaded``, ``predicted``, ``pushed``, ``exposed``,
    ``done``."""
    message: str
    data: dict[str, Any] = field(default_factory=dict)


RunProgress = Callable[[RunEvent], None]
Publisher = Callable[[CollectorRegistry, Mapping[str, str]], None]
"""Pushes a registry as the group ``grouping_key`` (e.g. a partial of
:func:`foresight.prometheus.pushgateway.push` with the gateway URL)."""
RemoteWriter = Callable[[Forecast], int]


@dataclass(frozen=True)
class ModelScore:
    """Backtest error of one model over the whole horizon (what status shows)."""

    model: str
    mase: float | None
    mae: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "mase": self.mase, "mae": self.mae}


@dataclass
class RunResult:
    """What one run did; ``phase`` is ``Ready`` or ``Failed``."""

    phase: str
    reason: str
    message: str
    mode: str = "train"
    """What the run actually did: ``train`` (backtest + fit + predict) or ``predict``."""
    retryable: bool = False
    series_count: int = 0
    model: str | None = None
    """The model in use, per-series picks summarised (``auto(ets:12,lstm:30)``)."""
    backtest: list[ModelScore] = field(default_factory=list)
    artifact_uri: str | None = None
    artifact_sha256: str | None = None
    """The saved model directory's manifest checksum (train runs that saved one)."""
    trained_models: list[str] | None = None
    """Models whose fitted weights the saved artifact holds (train runs that saved one): empty
    when only baselines were chosen, whose saved "model" is just their parameters."""
    last_train_time: float | None = None
    last_predict_time: float | None = None
    pushed: bool = False
    exposition_uri: str | None = None
    """Where a scrape-mode run wrote its exposition (``None``: not written)."""
    metric_names: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    panel: Panel | None = None
    forecast: Forecast | None = None
    threshold: ThresholdResult | None = None
    exposition: bytes = b""
    backtest_results: dict[str, BacktestResult] = field(default_factory=dict)
    """Per-fold backtests of this run (empty on predict-only runs)."""

    def __post_init__(self) -> None:
        self.reason = str(self.reason)  # a ForecastReason member prints as its plain value

    @property
    def ok(self) -> bool:
        return self.phase == "Ready"

    def summary(self) -> dict[str, Any]:
        """The result as status-shaped JSON (camelCase, ISO times, no arrays)."""
        doc: dict[str, Any] = {
            "phase": self.phase,
            "reason": self.reason,
            "message": self.message,
            "mode": self.mode,
            "retryable": self.retryable,
            "seriesCount": self.series_count,
            "model": self.model,
            "backtest": [s.to_dict() for s in self.backtest],
            "artifactUri": self.artifact_uri,
            "sha256": self.artifact_sha256,
            "trainedModels": self.trained_models,
            "lastTrainTime": _iso(self.last_train_time),
            "lastPredictTime": _iso(self.last_predict_time),
            "pushed": self.pushed,
            "expositionUri": self.exposition_uri,
            "warnings": self.warnings,
        }
        return {k: v for k, v in doc.items() if v is not None}

    def as_message(self) -> ForecastRunResult:
        """The result as the pod's termination message carries it to the operator (the contract's schema)."""
        return ForecastRunResult.of(self.summary())


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


class _RunFailure(Exception):
    """A failure with its condition reason, raised inside the run and turned into a result."""

    def __init__(self, reason: str, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retryable = retryable


# ---- spec -> parts ----------------------------------------------------------------------------


def _capacity(spec: ForecastTaskSpec) -> Capacity | None:
    # The threshold ratio is applied by the runner, so panel.capacity is the quota itself.
    if spec.threshold is None:
        return None
    cap = spec.threshold.capacity
    if cap.query:
        return QueryCapacity(cap.query)
    if cap.value is not None:
        return ConstantCapacity(cap.value)
    return None


def _calendar(spec: ForecastTaskSpec) -> dict[str, Any]:
    cal = spec.calendar
    out: dict[str, Any] = {
        "hour_of_day": cal.hour_of_day,
        "day_of_week": cal.day_of_week,
        "day_night": cal.day_night is not None,
        "time_zone": cal.time_zone,
    }
    if cal.day_night is not None:
        out["day_start_hour"] = cal.day_night.day_start_hour
        out["day_end_hour"] = cal.day_night.day_end_hour
    return out


def model_params(spec: ForecastTaskSpec, name: str) -> dict[str, Any]:
    """Constructor parameters of registry model ``name`` for this task."""
    if name in NEURAL:
        return {**spec.model.hyperparameters.model_dump(), "calendar": _calendar(spec)}
    return {"level": spec.model.interval_level}


def build_model(spec: ForecastTaskSpec) -> Model:
    """The task's (unfitted) model: an ``AutoModel`` over the candidates, or one registry model."""
    mtype = str(spec.model.type)
    if mtype == "auto":
        from .auto import AutoModel

        candidates = [str(c) for c in spec.model.candidates if str(c) != "auto"]
        return AutoModel(
            candidates=candidates,
            model_params={c: model_params(spec, c) for c in candidates},
            folds=spec.model.backtest_folds,
        )
    return get_model(mtype, **model_params(spec, mtype))


def spec_digest(spec: ForecastTaskSpec) -> str:
    """A hash of what a trained model depends on (source, calendar, model, horizon).

    Schedule, output, limits and placement changes do not invalidate a model.
    """
    src = spec.source.model_dump(mode="json", exclude={"url", "lookback", "bearer_token_secret"})
    doc = {
        "source": src,
        "calendar": spec.calendar.model_dump(mode="json"),
        "model": spec.model.model_dump(mode="json"),
        "horizon": spec.horizon,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def model_summary(forecast: Forecast, mtype: str) -> str:
    """``auto(ets:12,lstm:30)`` for per-series picks; the model name for a single model."""
    if mtype != "auto":
        return mtype
    # Ensembles are counted together so the summary stays short enough for a printer column.
    counts = Counter("ensemble" if m.startswith("ensemble:") else m for m in forecast.model)
    return "auto(" + ",".join(f"{m}:{n}" for m, n in sorted(counts.items())) + ")"


# ---- persistence of models and forecasts -----------------------------------------------------


def _prefix(namespace: str, name: str) -> str:
    return f"{STORE_PREFIX}/{namespace}/{name}"


def exposition_key(namespace: str, name: str) -> str:
    """The store key of a scrape-mode task's metrics exposition (what ``foresight serve forecasts`` reads)."""
    return f"{_prefix(namespace, name)}/{EXPOSITION_FILE}"


def _read_json(store: ArtifactStore, key: str) -> dict[str, Any] | None:
    try:
        doc = json.loads(store.get_bytes(key))
    except ArtifactNotFoundError:
        return None
    return doc if isinstance(doc, dict) else None


def _trained_models(model: Model, saved: Path) -> list[str]:
    """The models whose fitted weights ``saved`` (a model directory just written) holds."""
    if not model.saveable:
        return []
    config = json.loads((saved / "config.json").read_text())
    fitted = config.get("fitted")
    if isinstance(fitted, dict):  # auto: the per-series picks, only some of them trained
        return sorted(
            str(name) for name, info in fitted.items() if isinstance(info, dict) and info.get("saved")
        )
    return [model.name]


def _save_model(
    store: ArtifactStore, prefix: str, version: str, model: Model, run: dict[str, Any]
) -> tuple[str, str, list[str]]:
    """Upload ``model`` + ``run.json`` as a manifest-checked directory, then point ``latest`` at it.

    Returns the directory's URI, its manifest's sha256 and :func:`_trained_models`.
    """
    with tempfile.TemporaryDirectory(prefix="foresight-model-") as tmp:
        root = Path(tmp)
        if model.saveable:
            model.save(root / "model")
            trained = _trained_models(model, root / "model")
        else:
            trained = []
            # Closed-form and statsforecast models have no fitted state: their parameters are the model.
            (root / "model").mkdir()
            config = {"name": model.name, "params": model.params(), "stateless": True}
            (root / "model" / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
        (root / "run.json").write_text(json.dumps(run, indent=2, sort_keys=True, default=str))
        info = store.put_dir(root, f"{prefix}/{version}")
    pointer = {"version": version, "uri": info.uri, **{k: run[k] for k in ("trainedAt", "specDigest")}}
    store.put_bytes(json.dumps(pointer, sort_keys=True).encode(), f"{prefix}/latest.json")
    return info.uri, info.manifest.sha256, trained


def _load_model(store: ArtifactStore, prefix: str, version: str) -> tuple[Model, dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="foresight-model-") as tmp:
        local = Path(tmp) / "m"
        store.get_dir(f"{prefix}/{version}", local)
        run = json.loads((local / "run.json").read_text())
        config = json.loads((local / "model" / "config.json").read_text())
        if config.get("stateless"):
            model = get_model(str(config["name"]), **config["params"])
        else:
            model = load_model(local / "model")
    return model, run


def _forecast_to_json(fc: Forecast) -> dict[str, Any]:
    def arr(a: FloatArray) -> list[list[float | None]]:
        return [[_finite(float(x)) for x in row] for row in a]

    return {
        "origin": fc.origin, "step": fc.step, "keys": fc.keys, "point": arr(fc.point),
        "lower": arr(fc.lower), "upper": arr(fc.upper), "model": fc.model, "level": fc.level,
    }  # fmt: skip


def _forecast_from_json(doc: Mapping[str, Any]) -> Forecast:
    def arr(rows: Sequence[Sequence[float | None]]) -> FloatArray:
        return np.array([[np.nan if x is None else x for x in r] for r in rows], dtype=np.float64)

    return Forecast(
        origin=int(doc["origin"]), step=int(doc["step"]), keys=[dict(k) for k in doc["keys"]],
        point=arr(doc["point"]), lower=arr(doc["lower"]), upper=arr(doc["upper"]),
        model=list(doc["model"]), level=float(doc["level"]),
    )  # fmt: skip


# ---- backtest figures ----------------------------------------------------------------------


def _scores(results: Mapping[str, BacktestResult]) -> list[ModelScore]:
    out = []
    for name, r in results.items():
        s = r.summary()
        out.append(ModelScore(name, _finite(s["mase"]), _finite(s["mae"])))
    return out


def _per_horizon_errors(
    results: Mapping[str, BacktestResult], horizons: Sequence[tuple[str, int]]
) -> list[BacktestError]:
    out = []
    for name, r in results.items():
        for text, h in horizons:
            if h > r.horizon:
                continue
            actual, point = r.actual[:, :, h - 1], r.point[:, :, h - 1]
            mae = metrics.mae(actual, point)
            mase = metrics.mase(actual, point, r.scale)
            for metric, values in (("mae", mae), ("mase", mase)):
                finite = values[np.isfinite(values)]
                if finite.size:
                    out.append(BacktestError(name, metric, text, float(np.mean(finite))))
    return out


# ---- the run -----------------------------------------------------------------------------------


def run_forecast_task(
    spec: ForecastTaskSpec,
    *,
    name: str,
    namespace: str,
    prometheus: PrometheusClient,
    pushgateway: Publisher | None = None,
    store: ArtifactStore | None = None,
    clock: Callable[[], float] = _time.time,
    progress: RunProgress | None = None,
    mode: RunMode = "auto",
    remote_writer: RemoteWriter | None = None,
) -> RunResult:
    """Run a ForecastTask once; never raises for bad input or outages (see :class:`RunResult`).

    Args:
        spec: the task.
        name, namespace: the task's identity (labels of the written metrics, store prefix).
        prometheus: where history is read (a :class:`PrometheusClient` or a stand-in).
        pushgateway: pushes the gauges when ``spec.output.mode`` is ``pushgateway``; ``None``
            computes them without pushing (a warning says so).
        store: where models and the last forecast are kept (and, with ``spec.output.mode``
            ``scrape``, the exposition); ``None`` trains every run.
        clock: Unix seconds now.
        progress: receives :class:`RunEvent` as the run goes.
        mode: ``train``, ``predict`` (needs a saved model), or ``auto`` (train when needed).
        remote_writer: sends the trajectory when ``spec.output.remoteWriteUrl`` is set.
    """
    emit = progress or (lambda event: None)
    now = clock()
    state: dict[str, Any] = {"stage": "ingest", "series": 0}
    try:
        result = _run(spec, name, namespace, prometheus, pushgateway, store, now, emit, mode, remote_writer,
                      state)  # fmt: skip
    except _RunFailure as exc:
        result = RunResult("Failed", exc.reason, exc.message, retryable=exc.retryable)
    except PromQLError as exc:
        result = RunResult("Failed", ForecastReason.PROMQL_ERROR, str(exc))
    except NoSeriesError as exc:
        result = RunResult("Failed", ForecastReason.NO_SERIES, str(exc))
    except InsufficientHistoryError as exc:
        result = RunResult("Failed", ForecastReason.INSUFFICIENT_HISTORY, str(exc))
    except TooManySeriesError as exc:
        result = RunResult("Failed", ForecastReason.TOO_MANY_SERIES, str(exc))
    except PrometheusUnavailable as exc:
        reason = (
            ForecastReason.PUSHGATEWAY_UNAVAILABLE
            if state["stage"] == "push"
            else ForecastReason.PROMETHEUS_UNAVAILABLE
        )
        result = RunResult("Failed", reason, str(exc), retryable=True)
    except PushgatewayError as exc:
        result = RunResult("Failed", ForecastReason.PUSHGATEWAY_UNAVAILABLE, str(exc))
    except PrometheusResponseError as exc:
        result = RunResult("Failed", ForecastReason.PROMETHEUS_UNAVAILABLE, str(exc))
    except PrometheusError as exc:
        result = RunResult("Failed", ForecastReason.RUN_FAILED, str(exc), retryable=exc.temporary)
    except ArtifactError as exc:
        result = RunResult(
            "Failed", ForecastReason.RUN_FAILED, f"artifact store: {exc}",
            retryable=exc.retryable,
        )  # fmt: skip
    except Exception as exc:  # a bug or an environment problem: still a readable result
        log.exception("forecast run of %s/%s failed during %s", namespace, name, state["stage"])
        result = RunResult(
            "Failed", ForecastReason.RUN_FAILED, f"{state['stage']} failed: {type(exc).__name__}: {exc}"
        )
    result.series_count = int(state["series"])
    emit(RunEvent("done", f"{result.phase}: {result.reason}: {result.message}", result.summary()))
    return result


def _run(
    spec: ForecastTaskSpec,
    name: str,
    namespace: str,
    prometheus: PrometheusClient,
    pushgateway: Publisher | None,
    store: ArtifactStore | None,
    now: float,
    emit: RunProgress,
    mode: RunMode,
    remote_writer: RemoteWriter | None,
    state: dict[str, Any],
) -> RunResult:
    step = go_duration_seconds(spec.source.step)
    lookback = go_duration_seconds(spec.source.lookback)
    horizon_seconds = go_duration_seconds(spec.horizon)
    horizon = max(1, math.ceil(horizon_seconds / step))
    out_horizons: list[tuple[str, int]] = []
    for text in spec.output.horizons:
        secs = go_duration_seconds(text)
        if secs % step or not 1 <= secs // step <= horizon:
            raise _RunFailure(
                ForecastReason.RUN_FAILED,
                f"output.horizons entry {text!r} is not a whole number of steps ({spec.source.step}) "
                f"within the horizon ({spec.horizon}); use multiples of the step up to the horizon",
            )
        out_horizons.append((horizon_label(secs), secs // step))
    mtype = str(spec.model.type)
    warnings: list[str] = []

    # 1. History.
    src = spec.source
    emit(
        RunEvent("ingest", f"querying {src.query!r} over {src.lookback} at {src.step}", {"query": src.query})
    )
    ingested: IngestResult = ingest(
        prometheus,
        spec.source.query,
        start=now - lookback,
        end=now,
        step=step,
        group_by=spec.source.group_by,
        aggregate=spec.source.aggregation,
        covariates={c.name: c.query for c in spec.source.covariates},
        capacity=_capacity(spec),
        max_series=spec.limits.max_series,
        min_history_points=spec.limits.min_history_points,
        counter=spec.source.counter,
    )
    panel = ingested.panel
    state["series"] = panel.n_series
    warnings += ingested.warnings
    for note in ingested.warnings:
        log.warning("%s", note)
    emit(RunEvent("ingested", f"{panel.n_series} series x {panel.n_steps} steps "
                  f"({ingested.raw_series} raw series before grouping)",
                  {"series": panel.n_series, "steps": panel.n_steps}))  # fmt: skip

    # 2. Train, or load what an earlier run trained.
    prefix = _prefix(namespace, name)
    digest = spec_digest(spec)
    saved = _read_json(store, f"{prefix}/latest.json") if store is not None else None
    train = mode == "train"
    if mode == "predict" and saved is None:
        where = store.uri_for(prefix) if store is not None else "(no artifact store)"
        raise _RunFailure(
            ForecastReason.RUN_FAILED,
            f"mode predict, but no trained model under {where}: run with mode train (or auto) first",
        )
    if mode == "auto":
        retrain_every = go_duration_seconds(spec.schedule.retrain_every)
        train = (
            saved is None
            or saved.get("specDigest") != digest
            or now - float(saved.get("trainedAt", 0)) >= retrain_every
        )
    if mode == "predict" and saved is not None and saved.get("specDigest") != digest:
        warnings.append(
            f"the saved model {saved.get('version')} was trained for an earlier spec (digest "
            f"{saved.get('specDigest')}, now {digest}); run mode train to retrain it"
        )

    backtest_results: dict[str, BacktestResult] = {}
    artifact_uri: str | None = None
    artifact_sha: str | None = None
    trained_models: list[str] | None = None
    last_train: float | None = None
    model: Model
    if train:
        state["stage"] = "train"
        model, backtest_results = _train(spec, panel, horizon, emit)
        last_train = now
        scores = _scores(backtest_results)
        if store is not None:
            state["stage"] = "save"
            version = "v" + datetime.fromtimestamp(now, tz=UTC).strftime("%Y%m%dT%H%M%SZ")
            by_horizon = _per_horizon_errors(backtest_results, out_horizons)
            run_doc: dict[str, Any] = {
                "trainedAt": now, "specDigest": digest, "model": mtype, "step": step, "horizon": horizon,
                "seriesCount": panel.n_series, "backtest": [s.to_dict() for s in scores],
                "backtestByHorizon": [b.__dict__ for b in by_horizon],
            }  # fmt: skip
            artifact_uri, artifact_sha, trained_models = _save_model(store, prefix, version, model, run_doc)
            emit(RunEvent("saved", f"model saved to {artifact_uri}",
                          {"uri": artifact_uri, "sha256": artifact_sha}))  # fmt: skip
        bt_errors = _per_horizon_errors(backtest_results, out_horizons)
    else:
        assert store is not None and saved is not None
        state["stage"] = "load"
        model, run_doc = _load_model(store, prefix, str(saved["version"]))
        artifact_uri = str(saved.get("uri"))
        last_train = float(run_doc["trainedAt"])
        if int(run_doc.get("horizon", 0)) < horizon or int(run_doc.get("step", step)) != step:
            raise _RunFailure(
                ForecastReason.RUN_FAILED,
                f"the saved model {saved['version']} predicts {run_doc.get('horizon')} steps of "
                f"{run_doc.get('step')}s; the task asks {horizon} steps of {step}s: retrain (mode train)",
            )
        scores = [ModelScore(r["model"], r.get("mase"), r.get("mae")) for r in run_doc.get("backtest", [])]
        bt_errors = [BacktestError(**b) for b in run_doc.get("backtestByHorizon", [])]
        emit(RunEvent("loaded", f"loaded model {saved['version']} from {artifact_uri}",
                      {"uri": artifact_uri}))  # fmt: skip

    # 3. Predict.
    state["stage"] = "predict"
    forecast = model.predict(panel, horizon)
    emit(RunEvent("predicted", f"forecast {panel.n_series} series {horizon} steps ahead",
                  {"origin": forecast.origin}))  # fmt: skip
    ratio = spec.threshold.ratio if spec.threshold is not None else 1.0
    thr_result: ThresholdResult | None = None
    threshold: FloatArray | None = None
    if spec.threshold is not None and panel.capacity is not None:
        thr_result = threshold_report(forecast, panel, ratio=ratio)
        threshold = thr_result.threshold
    last_actual = ffill(panel.values)[:, -1]
    previous: Forecast | None = None
    if store is not None:
        prev_doc = _read_json(store, f"{prefix}/forecast.json")
        if prev_doc is not None:
            try:
                previous = _forecast_from_json(prev_doc)
            except (KeyError, TypeError, ValueError) as exc:
                warnings.append(f"previous forecast in the store is unreadable and was ignored: {exc}")
    realised = (
        realised_errors([previous], panel, [t for t, _ in out_horizons]) if previous is not None else None
    )
    families = forecast_metrics(
        forecast,
        task=name,
        namespace=namespace,
        horizons=[t for t, _ in out_horizons],
        threshold=threshold,
        actual_latest=last_actual,
        previous=previous,
        realised_errors=realised,
        backtest_errors=bt_errors,
        last_run={"train": last_train if last_train is not None else now, "predict": now},
    )
    expo = exposition(families)
    metric_names = [f.name for f in families]

    # 4. Write back, only now that everything is computed.
    pushed = False
    if spec.output.mode == "pushgateway":
        if pushgateway is None:
            warnings.append("output.mode is pushgateway but no Pushgateway was given: nothing pushed")
        else:
            state["stage"] = "push"
            pushgateway(to_registry(families), {"namespace": namespace, "task": name})
            pushed = True
            emit(RunEvent("pushed", f"pushed {len(metric_names)} metric families",
                          {"metrics": metric_names}))  # fmt: skip
    exposition_uri: str | None = None
    if spec.output.mode == "scrape":
        if store is None:
            warnings.append(
                "output.mode is scrape but there is no artifact store to keep the exposition in: nothing "
                "published"
            )
        else:
            state["stage"] = "expose"
            # One put replaces the whole exposition: the server reads either the last run's or this one's.
            exposition_uri = store.put_bytes(expo, exposition_key(namespace, name)).uri
            emit(RunEvent("exposed", f"wrote {len(metric_names)} metric families to {exposition_uri} "
                          "for `foresight serve forecasts`",
                          {"uri": exposition_uri, "metrics": metric_names}))  # fmt: skip
    if spec.output.remote_write_url:
        if remote_writer is None:
            warnings.append(
                "output.remoteWriteUrl is set but no remote writer was given: trajectory not sent"
            )
        else:
            state["stage"] = "remote_write"
            remote_writer(forecast)
    if store is not None:
        state["stage"] = "save"
        store.put_bytes(json.dumps(_forecast_to_json(forecast)).encode(), f"{prefix}/forecast.json")

    msg = f"{panel.n_series} series forecast {spec.horizon} ahead with {model_summary(forecast, mtype)}"
    if not pushed and spec.output.mode == "pushgateway":
        msg += " (not pushed)"
    if exposition_uri is None and spec.output.mode == "scrape":
        msg += " (not published)"
    return RunResult(
        phase="Ready",
        reason=ForecastReason.FORECASTS_WRITTEN,
        message=msg,
        mode="train" if train else "predict",
        series_count=panel.n_series,
        model=model_summary(forecast, mtype),
        backtest=scores,
        artifact_uri=artifact_uri,
        artifact_sha256=artifact_sha,
        trained_models=trained_models,
        last_train_time=last_train,
        last_predict_time=now,
        pushed=pushed,
        exposition_uri=exposition_uri,
        metric_names=metric_names,
        warnings=warnings,
        panel=panel,
        forecast=forecast,
        threshold=thr_result,
        exposition=expo,
        backtest_results=backtest_results,
    )


def _train(
    spec: ForecastTaskSpec, panel: Panel, horizon: int, emit: RunProgress
) -> tuple[Model, dict[str, BacktestResult]]:
    folds = spec.model.backtest_folds
    need = folds * horizon + 2
    if panel.n_steps < need:
        raise _RunFailure(
            ForecastReason.INSUFFICIENT_HISTORY,
            f"{panel.n_steps} steps of history are too few for {folds} backtest folds of {horizon} steps "
            f"(need at least {need}): lengthen source.lookback, shorten horizon or lower "
            "model.backtestFolds",
        )
    mtype = str(spec.model.type)
    seed = spec.model.seed
    current = {"model": mtype}
    epochs = spec.model.hyperparameters.epochs

    def on_epoch(r: EpochReport) -> None:
        emit(RunEvent("epoch", f"{current['model']} epoch {r.epoch}/{epochs} train_loss={r.train_loss:.4f} "
                      f"val_loss={r.val_loss:.4f} ({r.seconds:.1f}s)",
                      {"model": current["model"], "epoch": r.epoch, "epochs": epochs,
                       "trainLoss": r.train_loss, "valLoss": r.val_loss}))  # fmt: skip

    def on_auto(kind: str, data: dict[str, Any]) -> None:
        current["model"] = str(data.get("model", current["model"]))
        if kind == "candidate":
            msg = f"backtest {data['index']}/{data['of']}: {data['model']} ({data['folds']} folds)"
        elif kind == "fold":
            msg = f"  {data['model']} fold {data['fold']}/{data['of']}"
        elif kind == "candidate_done":
            msg = (f"  {data['model']}: MASE {data['mase']:.3f} MAE {data['mae']:.4g} "
                   f"({data['seconds']:.1f}s)")  # fmt: skip
        elif kind == "candidate_failed":
            msg = f"  {data['model']} failed and is skipped: {data['error']}"
        else:
            msg = f"fitting {data['model']} on the full history"
        emit(RunEvent(kind, msg, data))

    emit(RunEvent("train", f"training {mtype} on {panel.n_series} series ({folds} backtest folds)",
                  {"model": mtype}))  # fmt: skip
    results: dict[str, BacktestResult] = {}
    model = build_model(spec)
    if mtype == "auto":
        from .auto import AutoModel

        assert isinstance(model, AutoModel)
        model.on_event = on_auto
        model.fit(panel, horizon, seed=seed, progress=on_epoch)
        results.update(model.results)
        if model.auto_result is not None:
            results["auto"] = model.auto_result
    else:
        model.progress = on_epoch
        on_auto("candidate", {"model": mtype, "index": 1, "of": 1, "folds": folds})
        t0 = _time.perf_counter()
        results[mtype] = backtest(panel, _factory(spec, mtype, on_epoch), horizon, folds, seed=seed)
        s = results[mtype].summary()
        on_auto("candidate_done", {"model": mtype, "mase": s["mase"], "mae": s["mae"],
                                   "seconds": _time.perf_counter() - t0})  # fmt: skip
        on_auto("refit", {"model": mtype})
        model.fit(panel, horizon, seed=seed, progress=on_epoch)
    for base in COMPARISON_BASELINES:
        if base not in results:
            results[base] = backtest(panel, _factory(spec, base, None), horizon, folds, seed=seed)
    return model, results


def _factory(
    spec: ForecastTaskSpec, name: str, on_epoch: Callable[[EpochReport], None] | None
) -> Callable[[], Model]:
    def make() -> Model:
        model = get_model(name, **model_params(spec, name))
        model.progress = on_epoch
        return model

    return make
