"""One run of a ForecastTask: ingest -> (backtest + train + save) -> predict -> write back.

This is the single code path behind every way a ForecastTask runs: the Job pod the operator
creates (``foresight run -f task.yaml``), local mode (``foresight run -f task.yaml --local``) and
``foresight demo``. Everything with I/O is passed in (the Prometheus client, the publisher that
pushes to a Pushgateway, the artifact store, the clock, the progress sink), so tests can give an
in-memory Prometheus and a fixed clock.

What a run does, one named step each (:class:`TaskRun`):

1. :func:`plan_run`: the spec's durations in steps of the grid, checked before anything is read.
2. ``ingest``: read ``lookback`` of history at ``step`` (aligned) with
   :func:`foresight.forecast.ingest.ingest`: grouped by ``groupBy``, covariates and per-series
   capacity included; then judged by :func:`foresight.forecast.quality.inspect_panel` (stale
   series, gaps, values outside ``source.valueRange``, extreme outliers read as missing, unusable
   capacities), which is what ``status.dataQuality`` reports.
3. ``train`` (mode ``train``, or ``auto`` when :func:`needs_training` says no usable model is
   saved, it is older than ``retrainEvery``, or the spec changed): a rolling-origin backtest of
   the model (``auto`` backtests every candidate), plus ``linear`` (= predict_linear) and
   ``seasonal_naive`` for comparison when they are not already candidates; fit on the full
   history; save the model directory to the artifact store (:mod:`foresight.forecast.persistence`).
   Or ``load``: mode ``predict`` loads the latest saved model instead.
4. ``predict``: forecasts and bounds (calibrated on the training backtest, clipped to
   ``source.valueRange``), time-to-threshold, exhaustion probability and the alert's verdict,
   anomaly flag and realised error against the previous run's forecast, as gauge families
   (:mod:`foresight.forecast.writeback`), for every series whose data is current; a stale series
   gets only ``foresight_data_stale`` = 1. ``recommend``, with ``spec.recommendation``: the
   architecture the predicted load needs, from an active model library, added to those families
   (:mod:`foresight.forecast.recommendation`).
5. ``write_back``, only once everything is computed: one Pushgateway PUT replaces the task's
   group (atomic for readers), or, with ``output.mode: scrape``, one atomic put of the same
   exposition to :func:`~foresight.forecast.persistence.exposition_key` in the artifact store,
   which ``foresight serve forecasts`` (:mod:`foresight.forecast.scrape`) serves; then the
   forecast is kept in the store for the next run's anomaly flag.

Bad input becomes a :class:`~foresight.forecast.result.RunResult` with ``phase="Failed"`` and a
reason from :class:`foresight.api.forecasttask.ForecastReason`, never an exception; so does a
Prometheus or Pushgateway outage (``retryable=True``). Which error gives which reason is the one
table :data:`foresight.forecast.errors.FAILURES`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time as _time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric

from foresight.api.durations import duration_seconds, format_duration
from foresight.api.forecasttask import ForecastReason, ForecastTaskSpec, output_horizons
from foresight.artifacts import ArtifactStore
from foresight.prometheus.client import PrometheusQueries
from foresight.prometheus.errors import PrometheusUnavailable, PushgatewayUnavailable
from foresight.timeseries import Forecast, Panel, finite_or_none

from . import accuracy, persistence
from .backtest import BacktestResult, backtest
from .errors import BacktestHistoryError, ForecastRunError, describe_failure, failure_of
from .ingest import Capacity, ConstantCapacity, QueryCapacity, ingest
from .models._baseline import ffill
from .models.base import EpochReport, Model, get_model, is_neural, model_class
from .quality import DataQuality, clip_to_range, inspect_panel
from .result import ModelScore, RunEvent, RunProgress, RunResult
from .run_scope import ModelMaker, RunScope
from .threshold import ThresholdResult, threshold_report
from .uncertainty import Uncertainty, learn, status_docs
from .uncertainty import apply as apply_uncertainty
from .writeback import (
    BacktestError,
    data_stale_family,
    exposition,
    forecast_metrics,
    realised_errors,
    to_registry,
)

__all__ = [
    "COMPARISON_BASELINES",
    "Publisher",
    "RemoteWriter",
    "RunMode",
    "RunPlan",
    "TaskRun",
    "build_model",
    "model_params",
    "needs_training",
    "plan_run",
    "run_forecast_task",
    "spec_digest",
]

log = logging.getLogger(__name__)

RunMode = Literal["train", "predict", "auto"]
COMPARISON_BASELINES: tuple[str, ...] = ("linear", "seasonal_naive")
"""Always backtested next to the task's model, so status shows the bar it must clear."""

Publisher = Callable[[CollectorRegistry, Mapping[str, str]], None]
"""Pushes a registry as the group ``grouping_key`` (e.g. a partial of
:func:`foresight.prometheus.pushgateway.push` with the gateway URL)."""
RemoteWriter = Callable[[Forecast], int]


# ---- spec -> parts ----------------------------------------------------------------------------


def _capacity(spec: ForecastTaskSpec) -> Capacity | None:
    # The threshold ratio is applied by the pipeline, so panel.capacity is the quota itself.
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
    """Constructor parameters of the model named ``name`` for this task."""
    if is_neural(name):
        return {**spec.model.hyperparameters.model_dump(), "calendar": _calendar(spec)}
    return {"level": spec.model.interval_level}


def build_model(spec: ForecastTaskSpec) -> Model:
    """The task's (unfitted) model: an ``AutoModel`` over the candidates, or the one model named."""
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


# ---- backtest figures ----------------------------------------------------------------------


def _scores(results: Mapping[str, BacktestResult]) -> list[ModelScore]:
    out = []
    for name, r in results.items():
        s = r.summary()
        out.append(ModelScore(name, finite_or_none(s["mase"]), finite_or_none(s["mae"])))
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
            mae = accuracy.mae(actual, point)
            mase = accuracy.mase(actual, point, r.scale)
            for metric, values in (("mae", mae), ("mase", mase)):
                finite = values[np.isfinite(values)]
                if finite.size:
                    out.append(BacktestError(name, metric, text, float(np.mean(finite))))
    return out


# ---- the run -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunPlan:
    """The spec's durations on the grid, checked before anything is read."""

    step: int
    """Seconds between points."""
    lookback: int
    """Seconds of history to read."""
    horizon: int
    """Steps to forecast."""
    out_horizons: tuple[tuple[str, int], ...]
    """``output.horizons`` (and with ``output.everyStep`` every step) as ``(label, steps)``: the
    horizons the gauges are written at."""


def plan_run(spec: ForecastTaskSpec) -> RunPlan:
    """The durations of ``spec`` in seconds and steps; :class:`ForecastRunError` when an output
    horizon is not a whole number of steps within the horizon."""
    step = duration_seconds(spec.source.step)
    lookback = duration_seconds(spec.source.lookback)
    horizon = max(1, math.ceil(duration_seconds(spec.horizon) / step))
    out_horizons: list[tuple[str, int]] = []
    for text in output_horizons(spec):
        secs = duration_seconds(text)
        if secs % step or not 1 <= secs // step <= horizon:
            raise ForecastRunError(
                f"output.horizons entry {text!r} is not a whole number of steps ({spec.source.step}) "
                f"within the horizon ({spec.horizon}); use multiples of the step up to the horizon"
            )
        out_horizons.append((format_duration(secs), secs // step))
    return RunPlan(step, lookback, horizon, tuple(out_horizons))


def needs_training(
    mode: RunMode, saved: Mapping[str, Any] | None, *, digest: str, now: float, retrain_every: int
) -> bool:
    """Whether this run trains. ``train`` always, ``predict`` never; ``auto`` when no model is
    ``saved`` (the store's ``latest.json``), it was trained for another spec ``digest``, or it is
    ``retrain_every`` seconds old or older."""
    if mode != "auto":
        return mode == "train"
    return (
        saved is None
        or saved.get("specDigest") != digest
        or now - float(saved.get("trainedAt", 0)) >= retrain_every
    )


@dataclass
class ModelInUse:
    """The model a run predicts with, trained now or loaded, and the figures that go with it."""

    model: Model
    trained: bool
    """Trained by this run (else loaded from the store)."""
    scores: list[ModelScore]
    backtest_errors: list[BacktestError]
    """Per output horizon, for ``foresight_backtest_error``."""
    last_train: float
    backtest_results: dict[str, BacktestResult]
    """Per-fold backtests of this run (empty when loaded)."""
    artifact_uri: str | None = None
    artifact_sha256: str | None = None
    trained_models: list[str] | None = None
    uncertainty: Uncertainty = field(default_factory=Uncertainty)
    """Its calibration and alert rule (empty for a model saved before they existed)."""


@dataclass
class Prediction:
    """The forecast and everything written back about it."""

    forecast: Forecast
    threshold: ThresholdResult | None
    families: list[Metric]
    exposition: bytes
    published: Forecast | None = None
    """The series whose data is current (what is written "from now"); ``None``: all of them."""


@dataclass
class Written:
    """Where the gauges went."""

    pushed: bool = False
    exposition_uri: str | None = None


class TaskRun:
    """One run of one task: its inputs, its I/O, and how far it got.

    Each step is a method; :meth:`execute` calls them in order. ``step`` names the step under way
    (what an unexpected failure is reported against) and ``series`` the series read so far.
    """

    def __init__(
        self,
        spec: ForecastTaskSpec,
        *,
        name: str,
        namespace: str,
        prometheus: PrometheusQueries,
        pushgateway: Publisher | None,
        store: ArtifactStore | None,
        now: float,
        emit: RunProgress,
        remote_writer: RemoteWriter | None,
        scope: RunScope | None = None,
    ) -> None:
        self.spec = spec
        self.name = name
        self.namespace = namespace
        self.prometheus = prometheus
        self.pushgateway = pushgateway
        self.store = store
        self.now = now
        self.emit = emit
        self.remote_writer = remote_writer
        self.scope = scope or RunScope.whole_task(namespace, name)
        self.prefix = self.scope.prefix
        # Durations are part of reading the history: a bad one fails the "ingest" step.
        self.step = "ingest"
        self.series = 0
        self.warnings: list[str] = []
        self.quality: DataQuality | None = None
        """What the ingest step found in the input (the predict step adds what it clipped)."""

    def execute(self, mode: RunMode) -> RunResult:
        """The run, start to finish; raises what stops it (:meth:`failed` turns it into a result)."""
        plan = plan_run(self.spec)
        panel = self.ingest(plan)
        saved = self.latest_saved()
        if self.decide_training(mode, saved):
            in_use = self.train(panel, plan)
        else:
            assert saved is not None  # decide_training refuses to predict without one
            in_use = self.load(plan, saved)
        predicted = self.predict(panel, plan, in_use)
        recommended = self.recommend(panel, predicted)
        written = self.write_back(predicted)
        result = self.ready(panel, plan, in_use, predicted, written)
        result.recommendation = recommended
        return result

    def failed(self, exc: Exception) -> RunResult:
        """The ``Failed`` result for ``exc`` (:data:`foresight.forecast.errors.FAILURES`)."""
        if failure_of(exc).unexpected:
            log.exception("forecast run of %s/%s failed during %s", self.namespace, self.name, self.step)
        reason, retryable, message = describe_failure(exc, self.step)
        return RunResult("Failed", reason, message, retryable=retryable)

    # ---- the steps, in order ----

    def ingest(self, plan: RunPlan) -> Panel:
        src = self.spec.source
        self.emit(RunEvent("ingest", f"querying {src.query!r} over {src.lookback} at {src.step}",
                           {"query": src.query}))  # fmt: skip
        start, end = self.scope.window or (self.now - plan.lookback, self.now)
        ingested = ingest(
            self.prometheus,
            src.query,
            start=start,
            end=end,
            step=plan.step,
            group_by=src.group_by,
            aggregate=src.aggregation,
            covariates={c.name: c.query for c in src.covariates},
            capacity=_capacity(self.spec),
            max_series=self.spec.limits.max_series,
            min_history_points=self.spec.limits.min_history_points,
            counter=src.counter,
        )
        self.series = ingested.panel.n_series
        self.warnings += ingested.warnings
        panel, self.quality = inspect_panel(
            ingested,
            counter=src.counter,
            value_range=src.value_range,
            threshold=self.spec.threshold is not None,
        )
        for note in [*ingested.warnings, *self.quality.warnings]:
            log.warning("%s", note)
        self.emit(RunEvent("ingested", f"{panel.n_series} series x {panel.n_steps} steps "
                           f"({ingested.raw_series} raw series before grouping)",
                           {"series": panel.n_series, "steps": panel.n_steps}))  # fmt: skip
        if self.quality.stale_message:
            log.warning("%s", self.quality.stale_message)
        return panel

    def latest_saved(self) -> dict[str, Any] | None:
        """The store's pointer to the newest saved model (``None``: none saved, or no store)."""
        if self.store is None:
            return None
        return persistence.read_json(self.store, f"{self.prefix}/{persistence.LATEST_FILE}")

    def decide_training(self, mode: RunMode, saved: Mapping[str, Any] | None) -> bool:
        """Train now, or predict with the ``saved`` model of an earlier run (:func:`needs_training`)."""
        digest = spec_digest(self.spec)
        if mode == "predict" and saved is None:
            where = self.store.uri_for(self.prefix) if self.store is not None else "(no artifact store)"
            raise ForecastRunError(
                f"mode predict, but no trained model under {where}: run with mode train (or auto) first"
            )
        if mode == "predict" and saved is not None and saved.get("specDigest") != digest:
            self.warnings.append(
                f"the saved model {saved.get('version')} was trained for an earlier spec (digest "
                f"{saved.get('specDigest')}, now {digest}); run mode train to retrain it"
            )
        # Read only for mode auto: a predict or train run works whatever retrainEvery says.
        retrain_every = duration_seconds(self.spec.schedule.retrain_every) if mode == "auto" else 0
        return needs_training(mode, saved, digest=digest, now=self.now, retrain_every=retrain_every)

    def train(self, panel: Panel, plan: RunPlan) -> ModelInUse:
        self.step = "train"
        model, results, in_use_backtest = _train(self.spec, panel, plan.horizon, self.emit, self.scope.models)
        in_use = ModelInUse(
            model, trained=True, scores=_scores(results), last_train=self.now, backtest_results=results,
            backtest_errors=_per_horizon_errors(results, plan.out_horizons),
            uncertainty=learn(self.spec, panel, in_use_backtest, plan.horizon),
        )  # fmt: skip
        if self.store is not None:
            self.step = "save"
            version = "v" + datetime.fromtimestamp(self.now, tz=UTC).strftime("%Y%m%dT%H%M%SZ")
            run_doc: dict[str, Any] = {
                "trainedAt": self.now, "specDigest": spec_digest(self.spec),
                "model": str(self.spec.model.type), "step": plan.step, "horizon": plan.horizon,
                "seriesCount": panel.n_series,
                "backtest": [s.to_dict() for s in in_use.scores],
                "backtestByHorizon": [b.__dict__ for b in in_use.backtest_errors],
                **in_use.uncertainty.to_run_doc(),
            }  # fmt: skip
            in_use.artifact_uri, in_use.artifact_sha256, in_use.trained_models = persistence.save_model(
                self.store, self.prefix, version, model, run_doc
            )
            self.emit(RunEvent("saved", f"model saved to {in_use.artifact_uri}",
                               {"uri": in_use.artifact_uri, "sha256": in_use.artifact_sha256}))  # fmt: skip
        return in_use

    def load(self, plan: RunPlan, saved: Mapping[str, Any]) -> ModelInUse:
        assert self.store is not None  # a saved model came from it
        self.step = "load"
        model, run_doc = persistence.load_saved_model(self.store, self.prefix, str(saved["version"]))
        if int(run_doc.get("horizon", 0)) < plan.horizon or int(run_doc.get("step", plan.step)) != plan.step:
            raise ForecastRunError(
                f"the saved model {saved['version']} predicts {run_doc.get('horizon')} steps of "
                f"{run_doc.get('step')}s; the task asks {plan.horizon} steps of {plan.step}s: retrain "
                "(mode train)"
            )
        in_use = ModelInUse(
            model, trained=False, last_train=float(run_doc["trainedAt"]), backtest_results={},
            scores=[ModelScore(r["model"], r.get("mase"), r.get("mae")) for r in run_doc.get("backtest", [])],
            backtest_errors=[BacktestError(**b) for b in run_doc.get("backtestByHorizon", [])],
            artifact_uri=str(saved.get("uri")), uncertainty=Uncertainty.from_run_doc(run_doc),
        )  # fmt: skip
        self.emit(RunEvent("loaded", f"loaded model {saved['version']} from {in_use.artifact_uri}",
                           {"uri": in_use.artifact_uri}))  # fmt: skip
        return in_use

    def predict(self, panel: Panel, plan: RunPlan, in_use: ModelInUse) -> Prediction:
        self.step = "predict"
        applied = apply_uncertainty(
            self.spec, panel, in_use.model.predict(panel, plan.horizon), in_use.uncertainty, plan.out_horizons
        )
        forecast = self.keep_in_range(applied.forecast)
        self.emit(RunEvent("predicted", f"forecast {panel.n_series} series {plan.horizon} steps ahead",
                           {"origin": forecast.origin}))  # fmt: skip
        threshold: ThresholdResult | None = None
        if self.spec.threshold is not None and panel.capacity is not None:
            threshold = threshold_report(forecast, panel, ratio=self.spec.threshold.ratio)
        previous = self.previous_forecast()
        labels = [text for text, _ in plan.out_horizons]
        # Only series with current data get forecasts "from now"; a stale one only its stale flag.
        stale = self.quality.stale if self.quality is not None else np.zeros(panel.n_series, dtype=bool)
        fresh = np.flatnonzero(~stale)
        shown, shown_panel = forecast.select(fresh), panel.select(fresh)
        families = forecast_metrics(
            shown,
            task=self.name,
            namespace=self.namespace,
            horizons=labels,
            threshold=threshold.threshold[fresh] if threshold is not None else None,
            actual_latest=ffill(shown_panel.values)[:, -1],
            previous=previous,
            realised_errors=realised_errors([previous], shown_panel, labels)
            if previous is not None
            else None,
            backtest_errors=in_use.backtest_errors,
            last_run={"train": in_use.last_train, "predict": self.now},
            exhaustion=applied.assessment.select(fresh) if applied.assessment is not None else None,
            alert_rule=in_use.uncertainty.alert,
            coverage=applied.coverage,
        )
        families.append(data_stale_family(panel.keys, stale, task=self.name, namespace=self.namespace))
        return Prediction(forecast, threshold, families, exposition(families), published=shown)

    def keep_in_range(self, forecast: Forecast) -> Forecast:
        """``forecast`` clipped to ``source.valueRange`` (counted in the data quality)."""
        clipped, count = clip_to_range(forecast, self.spec.source.value_range)
        if self.quality is not None:
            self.quality.clipped_series = count
        return clipped

    def recommend(self, panel: Panel, predicted: Prediction) -> dict[str, Any] | None:
        """``spec.recommendation``: the architecture the predicted load needs, added to the gauges
        (:mod:`foresight.forecast.recommendation`); its status document, ``None`` when not asked."""
        if self.spec.recommendation is None:
            return None
        from .recommendation import recommend_for_run

        self.step = "recommend"
        outcome = recommend_for_run(
            self.spec.recommendation, forecast=predicted.forecast, latest=ffill(panel.values)[:, -1],
            store=self.store, task=self.name, namespace=self.namespace, now=self.now,
        )  # fmt: skip
        predicted.families.extend(outcome.families)
        predicted.exposition = exposition(predicted.families)
        self.warnings += outcome.warnings
        self.emit(RunEvent("recommended", outcome.message, {"changed": outcome.changed}))
        return outcome.status

    def previous_forecast(self) -> Forecast | None:
        """The forecast the previous run kept in the store, if any and readable."""
        if self.store is None:
            return None
        doc = persistence.read_json(self.store, f"{self.prefix}/{persistence.FORECAST_FILE}")
        if doc is None:
            return None
        try:
            return persistence.forecast_from_json(doc)
        except (KeyError, TypeError, ValueError) as exc:
            self.warnings.append(f"previous forecast in the store is unreadable and was ignored: {exc}")
            return None

    def write_back(self, predicted: Prediction) -> Written:
        """Push, expose and remote-write as ``output`` says, then keep the forecast for the next run."""
        out = self.spec.output
        written = Written()
        if out.mode == "pushgateway":
            written.pushed = self.push(predicted.families)
        if out.mode == "scrape":
            written.exposition_uri = self.expose(predicted)
        if out.remote_write_url:
            published = predicted.published if predicted.published is not None else predicted.forecast
            self.remote_write(published)
        if self.store is not None:
            self.step = "save"
            persistence.save_forecast(self.store, self.prefix, predicted.forecast)
        return written

    def push(self, families: Sequence[Metric]) -> bool:
        """Replace the task's Pushgateway group with ``families``; ``False``: no Pushgateway given."""
        if self.pushgateway is None:
            self.warnings.append("output.mode is pushgateway but no Pushgateway was given: nothing pushed")
            return False
        self.step = "push"
        try:
            self.pushgateway(to_registry(families), self.scope.group_key)
        except PrometheusUnavailable as exc:
            # The publisher is any callable that pushes (the real client, a stand-in in tests): what
            # it could not reach is the Pushgateway, whichever class it raised.
            raise PushgatewayUnavailable(exc.url, exc.reason, attempts=exc.attempts) from exc
        names = [f.name for f in families]
        self.emit(RunEvent("pushed", f"pushed {len(names)} metric families", {"metrics": names}))
        return True

    def expose(self, predicted: Prediction) -> str | None:
        """Put the exposition where ``foresight serve forecasts`` reads it; its URI (``None``: no store)."""
        if self.store is None:
            self.warnings.append(
                "output.mode is scrape but there is no artifact store to keep the exposition in: nothing "
                "published"
            )
            return None
        self.step = "expose"
        # One put replaces the whole exposition: the server reads either the last run's or this one's.
        uri = self.store.put_bytes(predicted.exposition, self.scope.exposition_key).uri
        names = [f.name for f in predicted.families]
        self.emit(RunEvent("exposed", f"wrote {len(names)} metric families to {uri} for "
                           "`foresight serve forecasts`", {"uri": uri, "metrics": names}))  # fmt: skip
        return uri

    def remote_write(self, forecast: Forecast) -> None:
        """Send the trajectory to ``output.remoteWriteUrl``."""
        if self.remote_writer is None:
            self.warnings.append(
                "output.remoteWriteUrl is set but no remote writer was given: trajectory not sent"
            )
            return
        self.step = "remote_write"
        self.remote_writer(forecast)

    def ready(
        self, panel: Panel, plan: RunPlan, in_use: ModelInUse, predicted: Prediction, written: Written
    ) -> RunResult:
        """The ``Ready`` result of a run that got this far."""
        out, mtype = self.spec.output, str(self.spec.model.type)
        summary = model_summary(predicted.forecast, mtype)
        bands, alert = status_docs(in_use.uncertainty, plan.out_horizons, panel.step)
        msg = f"{panel.n_series} series forecast {self.spec.horizon} ahead with {summary}"
        if not written.pushed and out.mode == "pushgateway":
            msg += " (not pushed)"
        if written.exposition_uri is None and out.mode == "scrape":
            msg += " (not published)"
        if self.quality is not None and self.quality.stale_series:
            msg += (
                f"; {self.quality.stale_series} series with stale data got no forecast (see the StaleData "
                "condition)"
            )
        return RunResult(
            phase="Ready",
            reason=ForecastReason.FORECASTS_WRITTEN,
            message=msg,
            mode="train" if in_use.trained else "predict",
            series_count=panel.n_series,
            model=summary,
            backtest=in_use.scores,
            artifact_uri=in_use.artifact_uri,
            artifact_sha256=in_use.artifact_sha256,
            trained_models=in_use.trained_models,
            last_train_time=in_use.last_train,
            last_predict_time=self.now,
            pushed=written.pushed,
            exposition_uri=written.exposition_uri,
            bands=bands,
            alert=alert,
            metric_names=[f.name for f in predicted.families],
            warnings=self.warnings,
            data_quality=self.quality.report() if self.quality is not None else None,
            panel=panel,
            forecast=predicted.forecast,
            threshold=predicted.threshold,
            exposition=predicted.exposition,
            backtest_results=in_use.backtest_results,
        )


def run_forecast_task(
    spec: ForecastTaskSpec,
    *,
    name: str,
    namespace: str,
    prometheus: PrometheusQueries,
    pushgateway: Publisher | None = None,
    store: ArtifactStore | None = None,
    clock: Callable[[], float] = _time.time,
    progress: RunProgress | None = None,
    mode: RunMode = "auto",
    remote_writer: RemoteWriter | None = None,
    scope: RunScope | None = None,
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
        scope: what the run covers (:class:`RunScope`); ``None``: the whole task.
    """
    emit = progress or (lambda event: None)
    run = TaskRun(
        spec, name=name, namespace=namespace, prometheus=prometheus, pushgateway=pushgateway, store=store,
        now=clock(), emit=emit, remote_writer=remote_writer, scope=scope,
    )  # fmt: skip
    try:
        result = run.execute(mode)
    except Exception as exc:  # every failure, bad input or bug, becomes a readable result
        result = run.failed(exc)
    result.series_count = run.series
    emit(RunEvent("done", f"{result.phase}: {result.reason}: {result.message}", result.summary()))
    return result


# ---- training ---------------------------------------------------------------------------------


class _TrainingProgress:
    """The models' epoch reports and ``auto``'s candidate events, as RunEvents."""

    def __init__(self, emit: RunProgress, model: str, epochs: int) -> None:
        self.emit = emit
        self.model = model
        """The model being trained now (``auto`` moves through its candidates)."""
        self.epochs = epochs
        self.folds = 0
        """Folds of the backtest under way (a network trains once for all of them)."""

    def epoch(self, r: EpochReport) -> None:
        self.emit(RunEvent("epoch", f"{self.model} epoch {r.epoch}/{self.epochs} "
                           f"train_loss={r.train_loss:.4f} val_loss={r.val_loss:.4f} ({r.seconds:.1f}s)",
                           {"model": self.model, "epoch": r.epoch, "epochs": self.epochs,
                            "trainLoss": r.train_loss, "valLoss": r.val_loss}))  # fmt: skip

    def candidate(self, kind: str, data: dict[str, Any]) -> None:
        self.model = str(data.get("model", self.model))
        if kind == "candidate":
            self.folds = int(data.get("folds") or 0)
        self.emit(RunEvent(kind, _candidate_message(kind, data, self.folds), data))


def _refits_per_fold(model: str) -> bool:
    """Whether a backtest fits ``model`` at every fold (the cheap models) or trains it once, on the
    history before the first fold, and predicts from each (the networks; see :mod:`.backtest`)."""
    try:
        return bool(model_class(model).cheap_refit)
    except ValueError:  # not a model name (a future event kind): say the plain thing
        return True


def _candidate_message(kind: str, data: Mapping[str, Any], folds: int = 0) -> str:
    """A progress line that says what really runs: how many fits a backtest makes, not only its folds."""
    model = str(data.get("model"))
    if kind == "candidate":
        how = "fitted at each" if _refits_per_fold(model) else "trained once, then predicting from each"
        return f"backtest {data['index']}/{data['of']}: {model} ({data['folds']} folds, {how})"
    if kind == "fold":
        if not _refits_per_fold(model):
            every = folds or data["of"]
            return f"  {model}: one training for all {every} folds, on the history before the first"
        return f"  {model} fold {data['fold']}/{data['of']}"
    if kind == "candidate_done":
        return f"  {data['model']}: MASE {data['mase']:.3f} MAE {data['mae']:.4g} ({data['seconds']:.1f}s)"
    if kind == "candidate_failed":
        return f"  {data['model']} failed and is skipped: {data['error']}"
    return f"fitting {data['model']} on the full history"


def _train(
    spec: ForecastTaskSpec, panel: Panel, horizon: int, emit: RunProgress, models: ModelMaker | None = None
) -> tuple[Model, dict[str, BacktestResult], BacktestResult]:
    """Backtest and fit the task's model on ``panel``; the comparison baselines are backtested too.

    Returns the model, the backtests status reports (``auto``'s nested) and the backtest of the
    model in use as it will predict (``auto``'s choice on every fold: what its bands calibrate on).
    ``models`` makes the task's model and its backtest's models when they are not built from the
    spec here (a shard's networks, trained once by its plan pod).
    """
    folds = spec.model.backtest_folds
    need = folds * horizon + 2
    if panel.n_steps < need:
        raise BacktestHistoryError(
            f"{panel.n_steps} steps of history are too few for {folds} backtest folds of {horizon} steps "
            f"(need at least {need}): lengthen source.lookback, shorten horizon or lower "
            "model.backtestFolds"
        )
    mtype = str(spec.model.type)
    progress = _TrainingProgress(emit, mtype, spec.model.hyperparameters.epochs)
    emit(RunEvent("train", f"training {mtype} on {panel.n_series} series ({folds} backtest folds)",
                  {"model": mtype}))  # fmt: skip
    model = models.task_model(spec) if models is not None else build_model(spec)
    if mtype == "auto":
        results = _fit_auto(model, panel, horizon, spec.model.seed, progress)
        in_use = getattr(model, "auto_result", None) or results["auto"]
    else:
        factory = (models.fold_factory if models is not None else _factory)(spec, mtype, progress.epoch)
        results = _fit_one(spec, model, panel, horizon, progress, factory)
        in_use = results[mtype]
    for base in COMPARISON_BASELINES:
        if base not in results:
            result = backtest(panel, _factory(spec, base, None), horizon, folds, seed=spec.model.seed)
            # Beside auto's nested estimate, on the same folds 2..F (see _fit_auto).
            results[base] = result.from_fold(1) if mtype == "auto" and folds > 1 else result
    return model, results, in_use


def _fit_auto(
    model: Model, panel: Panel, horizon: int, seed: int, progress: _TrainingProgress
) -> dict[str, BacktestResult]:
    """``auto`` backtests its candidates itself while it fits; its results are theirs plus its own."""
    from .auto import AutoModel

    assert isinstance(model, AutoModel)
    model.on_event = progress.candidate
    model.fit(panel, horizon, seed=seed, progress=progress.epoch)
    # Status reports auto's nested (honest) backtest; the bands are calibrated on auto_result.
    if model.folds > 1 and model.honest_result is not None:
        # The nested choice has no fold 1 (nothing before it to choose on): every row is scored on
        # folds 2..F, so auto's row compares like for like with its candidates'.
        results = {name: r.from_fold(1) for name, r in model.results.items()}
        results["auto"] = model.honest_result.from_fold(1)
        return results
    results = dict(model.results)
    if model.auto_result is not None:
        results["auto"] = model.auto_result
    return results


def _fit_one(
    spec: ForecastTaskSpec,
    model: Model,
    panel: Panel,
    horizon: int,
    progress: _TrainingProgress,
    factory: Callable[[], Model],
) -> dict[str, BacktestResult]:
    """One model: its backtest (fresh instances from ``factory`` per fold), then ``model`` fitted on
    everything."""
    mtype, folds, seed = str(spec.model.type), spec.model.backtest_folds, spec.model.seed
    model.progress = progress.epoch
    progress.candidate("candidate", {"model": mtype, "index": 1, "of": 1, "folds": folds})
    t0 = _time.perf_counter()
    result = backtest(panel, factory, horizon, folds, seed=seed)
    s = result.summary()
    progress.candidate("candidate_done", {"model": mtype, "mase": s["mase"], "mae": s["mae"],
                                          "seconds": _time.perf_counter() - t0})  # fmt: skip
    progress.candidate("refit", {"model": mtype})
    model.fit(panel, horizon, seed=seed, progress=progress.epoch)
    return {mtype: result}


def _factory(
    spec: ForecastTaskSpec, name: str, on_epoch: Callable[[EpochReport], None] | None
) -> Callable[[], Model]:
    def make() -> Model:
        model = get_model(name, **model_params(spec, name))
        model.progress = on_epoch
        return model

    return make
