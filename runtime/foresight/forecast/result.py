"""What one ForecastTask run reports: progress events as it goes, and its result at the end.

A run (:func:`foresight.forecast.pipeline.run_forecast_task`) sends :class:`RunEvent` to whoever
watches it (stdout in local mode, JSON lines in a Job pod, the demo's printout) and ends with a
:class:`RunResult`: ``Ready`` or ``Failed`` with a condition reason. :meth:`RunResult.summary` is
that result as status-shaped JSON, and :meth:`RunResult.as_message` its termination message in the
operator-runtime contract's schema (:mod:`foresight.contract.forecast`), which keeps it under the
4096 bytes Kubernetes keeps, the only channel back to the operator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from foresight.contract.forecast import DataQualityReport, ForecastRunResult
from foresight.timeseries import Forecast, Panel, rfc3339

from .backtest import BacktestResult
from .threshold import ThresholdResult

__all__ = ["ModelScore", "RunEvent", "RunProgress", "RunResult"]


@dataclass(frozen=True)
class RunEvent:
    """Something a person watching the run wants to see (stdout, logs, a progress file)."""

    kind: str
    """``ingest``, ``ingested``, ``train``, ``candidate``, ``fold``, ``epoch``, ``candidate_done``,
    ``candidate_failed``, ``refit``, ``saved``, ``loaded``, ``predicted``, ``recommended``, ``pushed``,
    ``exposed``, ``done``."""
    message: str
    data: dict[str, Any] = field(default_factory=dict)


RunProgress = Callable[[RunEvent], None]


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
    bands: dict[str, Any] | None = None
    """``status.bands``: the interval level and its measured coverage per output horizon."""
    alert: dict[str, Any] | None = None
    """``status.alert``: the exhaustion alert's rule and its backtested evidence."""
    metric_names: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    data_quality: DataQualityReport | None = None
    """What the run found in its input (``None`` when it failed before reading it)."""
    panel: Panel | None = None
    forecast: Forecast | None = None
    threshold: ThresholdResult | None = None
    exposition: bytes = b""
    backtest_results: dict[str, BacktestResult] = field(default_factory=dict)
    """Per-fold backtests of this run (empty on predict-only runs)."""
    sharding: dict[str, Any] = field(default_factory=dict)
    """A sharded run's plan or shard fields of the result message (``stage``, ``planId``,
    ``shard``, ``readQueries``...: :class:`~foresight.contract.forecast.ForecastRunResult`)."""
    recommendation: dict[str, Any] | None = None
    """``spec.recommendation``'s outcome, as ``status.recommendation`` shows it."""

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
            "bands": self.bands,
            "alert": self.alert,
            "warnings": self.warnings,
            **self.sharding,
            "recommendation": self.recommendation,
            "dataQuality": self.data_quality.model_dump(by_alias=True) if self.data_quality else None,
        }
        return {k: v for k, v in doc.items() if v is not None}

    def as_message(self) -> ForecastRunResult:
        """The result as the pod's termination message carries it to the operator (the contract's schema)."""
        return ForecastRunResult.of(self.summary())


def _iso(t: float | None) -> str | None:
    return None if t is None else rfc3339(t)
