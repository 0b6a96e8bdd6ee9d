"""What a trained model knows about its own errors, and what every prediction does with it.

When a run trains, :func:`learn` takes the backtest of the model in use (``auto``'s choice
applied to every fold) and keeps two things with the saved model:

- the **calibration** of its bands (:mod:`foresight.forecast.calibration`): conformal quantiles of
  its normalised errors per horizon step, a sample of whole residual paths (the predictive
  distribution behind exhaustion probabilities) and the coverage each fold got from bands
  calibrated on the other folds;
- the **alert rule** chosen on that backtest (:mod:`foresight.forecast.alerting`), for a task with a
  threshold.

Every prediction, trained now or loaded later, goes through :func:`apply`: the model's own
bounds are replaced by the calibrated ones (normalised by each series' scale *now*) and, with a
threshold, the exhaustion probability at each output horizon and the chosen rule's verdict are
computed. A model saved before calibration existed keeps its own bounds (and no alert) until the
next training run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from foresight.api.durations import duration_seconds, format_duration
from foresight.api.forecasttask import ForecastTaskSpec
from foresight.timeseries import FloatArray, Forecast, Panel

from . import accuracy
from .alerting import AlertChoice, AlertRule, Assessment, assess, choose_rule, score_rules
from .backtest import BacktestResult
from .calibration import Calibration, calibrate, safe_scale
from .models._baseline import ffill
from .models.base import steps_per_day

__all__ = [
    "DEFAULT_ALERT_WINDOW",
    "Applied",
    "Uncertainty",
    "alert_window",
    "apply",
    "current_scale",
    "learn",
    "status_docs",
]

DEFAULT_ALERT_WINDOW = 6 * 3600
"""The alert's window when the spec names none (capped at the horizon)."""


@dataclass(frozen=True)
class Uncertainty:
    """What is saved with a model: its calibration (JSON) and its alert rule."""

    calibration: Mapping[str, Any] | None = None
    alert: AlertChoice | None = None

    def to_run_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        if self.calibration is not None:
            doc["calibration"] = dict(self.calibration)
        if self.alert is not None:
            doc["alert"] = self.alert.to_dict()
        return doc

    @classmethod
    def from_run_doc(cls, doc: Mapping[str, Any]) -> Uncertainty:
        """What a saved model's ``run.json`` holds (nothing for models saved before calibration)."""
        alert = doc.get("alert")
        return cls(doc.get("calibration"), AlertChoice.from_dict(alert) if alert else None)


def alert_window(spec: ForecastTaskSpec, step: int, horizon: int) -> int:
    """The alert window in steps: ``threshold.alert.within``, else 6 h, within ``1..horizon``."""
    within = spec.threshold.alert.within if spec.threshold is not None else None
    seconds = duration_seconds(within) if within else DEFAULT_ALERT_WINDOW
    return max(1, min(horizon, math.ceil(seconds / step)))


def current_scale(panel: Panel) -> FloatArray:
    """Each series' scale from its history now: the MASE denominator the residuals were normalised by."""
    values = ffill(panel.values)
    return safe_scale(accuracy.seasonal_naive_scale(panel.values, steps_per_day(panel.step)), values[:, -1])


def learn(spec: ForecastTaskSpec, panel: Panel, backtest: BacktestResult, horizon: int) -> Uncertainty:
    """Calibrate the model in use on its ``backtest`` and, with a threshold, choose the alert rule."""
    last = ffill(panel.values)
    reference = last[:, backtest.origins[0]] if backtest.origins else last[:, -1]
    cal = calibrate(backtest.actual, backtest.point, backtest.scale, spec.model.interval_level,
                    reference=reference)  # fmt: skip
    alert = None
    if spec.threshold is not None and panel.capacity is not None:
        threshold = _threshold(spec, panel)
        within = alert_window(spec, panel.step, horizon)
        at_origins = np.stack([last[:, o] for o in backtest.origins], axis=1)
        scores, events, decisions = score_rules(
            backtest.actual, backtest.point, cal.scale, at_origins, threshold,
            level=spec.model.interval_level, within=within,
        )  # fmt: skip
        fixed = AlertRule.parse(spec.threshold.alert.rule) if spec.threshold.alert.rule else None
        alert = choose_rule(scores, events=events, decisions=decisions, within=within,
                            min_precision=spec.threshold.alert.min_precision, fixed=fixed)  # fmt: skip
    return Uncertainty(cal.to_dict(panel.keys), alert)


def _threshold(spec: ForecastTaskSpec, panel: Panel) -> FloatArray:
    assert spec.threshold is not None and panel.capacity is not None
    thr = np.asarray(panel.capacity, dtype=np.float64) * spec.threshold.ratio
    # A capacity that is zero, negative or missing gives no threshold (never "exhausted now").
    return np.where(np.isfinite(thr) & (thr > 0), thr, np.nan)


@dataclass(frozen=True)
class Applied:
    """A prediction after calibration: the forecast with calibrated bounds, and what it says."""

    forecast: Forecast
    assessment: Assessment | None
    coverage: dict[str, float]
    """Measured band coverage per output horizon label (from the training backtest)."""
    calibrated: bool


def apply(
    spec: ForecastTaskSpec,
    panel: Panel,
    forecast: Forecast,
    uncertainty: Uncertainty,
    horizons: Sequence[tuple[str, int]],
) -> Applied:
    """Calibrated bounds for ``forecast``, and the exhaustion assessment when the task has a threshold."""
    if uncertainty.calibration is None:
        return Applied(forecast, None, {}, calibrated=False)
    cal = Calibration.from_dict(uncertainty.calibration, panel.keys, current_scale(panel))
    h = min(forecast.horizon, cal.horizon)
    lower, upper = cal.bands(forecast.point[:, :h])
    forecast = replace(forecast, lower=lower, upper=upper, level=cal.level,
                       point=forecast.point[:, :h])  # fmt: skip
    coverage = {label: float(cal.coverage[steps - 1]) for label, steps in horizons
                if steps <= len(cal.coverage) and np.isfinite(cal.coverage[steps - 1])}  # fmt: skip
    assessment = None
    if spec.threshold is not None and panel.capacity is not None and uncertainty.alert is not None:
        threshold = _threshold(spec, panel)
        assessment = assess(
            point=forecast.point, upper=forecast.upper, last=ffill(panel.values)[:, -1], threshold=threshold,
            scale=cal.scale, paths=cal.paths, horizons=horizons, choice=uncertainty.alert, step=panel.step,
        )  # fmt: skip
    return Applied(forecast, assessment, coverage, calibrated=True)


def status_docs(
    uncertainty: Uncertainty, horizons: Sequence[tuple[str, int]], step: int
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """``status.bands`` and ``status.alert`` of a run (camelCase, as the API's status has them)."""
    bands = None
    if uncertainty.calibration is not None:
        cov = uncertainty.calibration.get("coverage") or []
        bands = {
            "level": uncertainty.calibration["level"],
            # No coverage key where none was measured (one backtest fold has no other fold to
            # calibrate on): the API omits unknowns rather than sending null.
            "coverage": [
                {"horizon": label, **({"coverage": cov[steps - 1]} if _measured(cov, steps) else {})}
                for label, steps in horizons
            ],
        }
    alert = None
    if uncertainty.alert is not None:
        a = uncertainty.alert
        lead = a.score.median_lead_steps if a.score is not None else None
        alert = {
            "rule": a.rule.label,
            "within": format_duration(a.within * step),
            "precision": a.score.precision if a.score is not None else None,
            "recall": a.score.recall if a.score is not None else None,
            "medianLeadSeconds": None if lead is None else lead * step,
            "events": a.events,
            "decisions": a.decisions,
            "truePositives": a.score.true_positives if a.score is not None else None,
            "falsePositives": a.score.false_positives if a.score is not None else None,
            "falseNegatives": a.score.false_negatives if a.score is not None else None,
            "reason": a.reason,
        }
        alert = {k: v for k, v in alert.items() if v is not None}
    return bands, alert


def _measured(coverage: Sequence[float | None], steps: int) -> bool:
    value = coverage[steps - 1] if steps <= len(coverage) else None
    return value is not None and bool(np.isfinite(value))
