"""Write-back: a :class:`foresight.timeseries.Forecast` -> Prometheus gauges *at now*.

The gauges follow the AICoE anomaly-detector convention (safe on every Prometheus, no future
timestamps); ``foresight_forecast{horizon="6h"} offset 6h`` then overlays what was predicted on
what happened. Families (all carry the series' ``group_by`` labels plus ``task`` and
``namespace``):

- ``foresight_forecast{..., horizon}``, ``foresight_forecast_lower``, ``foresight_forecast_upper``:
  the point forecast and the prediction band at each requested horizon (``"1h"``, ``"6h"``...).
- ``foresight_time_to_threshold_seconds{..., bound="point"|"upper"}``: seconds from the forecast
  origin until the point forecast (or the upper bound: the earliest plausible time) reaches the
  threshold; ``+Inf`` when it does not within the forecast horizon, 0 when already over.
- ``foresight_anomaly``: 1 when the latest actual lies outside the band that the previous
  forecast gave for this moment, else 0 (absent when there is no previous forecast covering it).
- ``foresight_forecast_error{..., horizon, metric="mae"|"mape"}``: realised error of earlier
  forecasts at that horizon (MAPE as a fraction: 0.1 is 10 %).
- ``foresight_backtest_error{task, namespace, model, metric, horizon}``: backtest error.
- ``foresight_last_run_timestamp_seconds{task, namespace, kind="train"|"predict"}``.
- ``foresight_data_stale``: 1 for a series whose newest sample is several steps old (its forecast
  gauges are left out: no forecast "from now" is written from old data), else 0
  (:func:`data_stale_family`; :mod:`foresight.forecast.quality` decides).

A series' own labels are named by :func:`foresight.prometheus.labels.series_labels` (sanitised,
``series_`` prefix on a clash with the labels above). Within one family every sample has the same
label names (missing ones are ``""``, which Prometheus treats as absent), as the Pushgateway
requires.

Pure functions only: pushing and serving live in :mod:`foresight.prometheus.pushgateway`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from foresight.api.durations import duration_seconds, format_duration
from foresight.forecast.alerting import AlertChoice, Assessment
from foresight.forecast.threshold import anomaly_flags, time_to_threshold
from foresight.library.recommend import Recommendation
from foresight.prometheus.labels import series_labels
from foresight.timeseries import FloatArray, Forecast, Panel, rfc3339

__all__ = [
    "BacktestError",
    "ForecastCollector",
    "data_stale_family",
    "exposition",
    "forecast_metrics",
    "realised_errors",
    "recommendation_metrics",
    "to_registry",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BacktestError:
    """One backtest figure for ``foresight_backtest_error``."""

    model: str
    metric: str
    """``mase`` or ``mae`` (others are passed through as given)."""
    horizon: str
    value: float


def _family(name: str, doc: str, samples: list[tuple[dict[str, str], float]]) -> Metric:
    metric = Metric(name, doc, "gauge")
    names = sorted({k for labels, _ in samples for k in labels})
    for labels, value in samples:
        metric.add_sample(name, {k: labels.get(k, "") for k in names}, float(value))
    return metric


def _horizon_steps(forecast: Forecast, horizons: Sequence[str]) -> list[tuple[str, int]]:
    out = []
    for text in horizons:
        seconds = duration_seconds(text)
        h, rem = divmod(seconds, forecast.step)
        if rem or not 1 <= h <= forecast.horizon:
            raise ValueError(
                f"horizon {text!r} ({seconds}s) is not a whole number of steps of {forecast.step}s within "
                f"the forecast's {forecast.horizon} steps ({forecast.horizon * forecast.step}s); choose "
                "horizons that are multiples of the step, up to the forecast horizon"
            )
        out.append((text, h))
    return out


def _reorder(previous: Forecast, keys: list[dict[str, str]]) -> Forecast | None:
    """``previous`` with rows in the order of ``keys`` (NaN rows for series it did not have)."""
    index = {tuple(sorted(k.items())): i for i, k in enumerate(previous.keys)}
    rows = [index.get(tuple(sorted(k.items()))) for k in keys]
    if all(r is None for r in rows):
        return None

    def take(a: FloatArray) -> FloatArray:
        out = np.full((len(keys), a.shape[1]), np.nan)
        for i, r in enumerate(rows):
            if r is not None:
                out[i] = a[r]
        return out

    return Forecast(
        origin=previous.origin,
        step=previous.step,
        keys=keys,
        point=take(previous.point),
        lower=take(previous.lower),
        upper=take(previous.upper),
        model=["?"] * len(keys),
        level=previous.level,
    )


def forecast_metrics(
    forecast: Forecast,
    *,
    task: str,
    namespace: str,
    horizons: Sequence[str],
    threshold: float | FloatArray | None = None,
    actual_latest: FloatArray | None = None,
    previous: Forecast | None = None,
    realised_errors: Mapping[str, Mapping[str, FloatArray]] | None = None,
    backtest_errors: Sequence[BacktestError] = (),
    last_run: Mapping[str, float] | None = None,
    exhaustion: Assessment | None = None,
    alert_rule: AlertChoice | None = None,
    coverage: Mapping[str, float] | None = None,
) -> list[Metric]:
    """The gauge families for one task's forecast (pure: no I/O, no clock).

    Args:
        forecast: the new forecast; its rows define the series.
        task, namespace: the ForecastTask's name and namespace.
        horizons: durations to publish, each a multiple of the step within the horizon.
        threshold: per-series (or one) threshold for time-to-threshold; NaN skips a series;
            ``None`` publishes no time-to-threshold.
        actual_latest: the latest actual per series at ``forecast.origin`` (the panel's last
            column); used as the path's starting point and for the anomaly flag.
        previous: an earlier forecast covering ``forecast.origin``; its band decides the anomaly.
        realised_errors: ``{horizon: {"mae"|"mape": per-series array}}``, e.g. from
            :func:`realised_errors`.
        backtest_errors: backtest figures per model / metric / horizon.
        last_run: ``{"train"|"predict": Unix seconds}``.
        exhaustion: the exhaustion probabilities and the alert's verdict (a task with a threshold).
        alert_rule: the rule behind that verdict (its ``rule`` and ``within`` labels).
        coverage: the bands' measured coverage per horizon label.
    """
    base = {"task": task, "namespace": namespace}
    labels = [{**series_labels(k), **base} for k in forecast.keys]
    last = (
        np.full(len(labels), np.nan) if actual_latest is None else np.asarray(actual_latest, dtype=np.float64)
    )
    families = _band_families(forecast, labels, _horizon_steps(forecast, horizons))
    if threshold is not None:
        families.append(_time_to_threshold_family(forecast, labels, last, threshold))
    if previous is not None and actual_latest is not None:
        anomaly = _anomaly_family(forecast, labels, last, previous)
        if anomaly is not None:
            families.append(anomaly)
    if exhaustion is not None and alert_rule is not None:
        families += _exhaustion_families(labels, exhaustion, alert_rule, forecast.step)
    if coverage:
        families.append(
            _family(
                "foresight_band_coverage",
                "Share of held-out actuals inside the band in the last backtest, per horizon.",
                [({**base, "horizon": h}, c) for h, c in coverage.items()],
            )
        )
    if realised_errors:
        families.append(_realised_error_family(labels, realised_errors))
    if backtest_errors:
        families.append(
            _family(
                "foresight_backtest_error",
                "Backtest error per model, metric and horizon.",
                [
                    ({**base, "model": b.model, "metric": b.metric, "horizon": b.horizon}, b.value)
                    for b in backtest_errors
                ],
            )
        )
    if last_run:
        families.append(
            _family(
                "foresight_last_run_timestamp_seconds",
                "Unix time of the last successful run of each kind.",
                [({**base, "kind": kind}, ts) for kind, ts in last_run.items()],
            )
        )
    return families


_Samples = list[tuple[dict[str, str], float]]


def _band_families(
    forecast: Forecast, labels: list[dict[str, str]], steps: list[tuple[str, int]]
) -> list[Metric]:
    """``foresight_forecast`` and its lower / upper bounds at each horizon."""
    point: _Samples = []
    lower: _Samples = []
    upper: _Samples = []
    for text, h in steps:
        for i, series in enumerate(labels):
            lab = {**series, "horizon": text}
            point.append((lab, forecast.point[i, h - 1]))
            lower.append((lab, forecast.lower[i, h - 1]))
            upper.append((lab, forecast.upper[i, h - 1]))
    return [
        _family("foresight_forecast", "Forecast value at now + horizon.", point),
        _family(
            "foresight_forecast_lower", "Lower bound of the prediction interval at now + horizon.", lower
        ),
        _family(
            "foresight_forecast_upper", "Upper bound of the prediction interval at now + horizon.", upper
        ),
    ]


def _time_to_threshold_family(
    forecast: Forecast, labels: list[dict[str, str]], last: FloatArray, threshold: float | FloatArray
) -> Metric:
    """Seconds until the point forecast and the upper bound reach the threshold (NaN: skipped)."""
    n = len(labels)
    thr = np.broadcast_to(np.asarray(threshold, dtype=np.float64), (n,))
    ttt: _Samples = []
    for bound, path in (("point", forecast.point), ("upper", forecast.upper)):
        secs = time_to_threshold(path, last, thr, forecast.step)
        ttt.extend(({**labels[i], "bound": bound}, secs[i]) for i in range(n) if np.isfinite(thr[i]))
    return _family(
        "foresight_time_to_threshold_seconds",
        "Seconds from the forecast origin until the threshold is reached (+Inf: not reached).",
        ttt,
    )


def _exhaustion_families(
    labels: list[dict[str, str]], ex: Assessment, choice: AlertChoice, step: int
) -> list[Metric]:
    """Per series with a usable threshold: the probability of exhaustion within each horizon, and
    the chosen rule's verdict with the time to the exhaustion it predicts."""
    rows = [i for i in range(len(labels)) if ex.usable[i]]
    prob: _Samples = [
        ({**labels[i], "within": text}, float(p[i])) for text, p in ex.probability.items() for i in rows
    ]
    rule = {"rule": choice.rule.label, "within": format_duration(choice.within * step)}
    return [
        _family("foresight_exhaustion_probability",
                "Probability that the threshold is reached within the horizon (calibrated).", prob),
        _family("foresight_exhaustion_alert",
                "1 when the task's alert rule (chosen on its backtest) predicts exhaustion in its window.",
                [({**labels[i], **rule}, float(ex.fired[i])) for i in rows]),
        _family("foresight_exhaustion_alert_lead_seconds",
                "Seconds until the exhaustion the alert predicts (+Inf when it does not fire).",
                [({**labels[i], **rule}, float(ex.lead_seconds[i])) for i in rows]),
    ]  # fmt: skip


def _anomaly_family(
    forecast: Forecast, labels: list[dict[str, str]], last: FloatArray, previous: Forecast
) -> Metric | None:
    """The anomaly flag against ``previous``'s band; ``None`` when that forecast does not cover now."""
    prev = _reorder(previous, forecast.keys)
    offset = forecast.origin - previous.origin
    if prev is None or offset % previous.step != 0 or not 1 <= offset // previous.step <= previous.horizon:
        log.info(
            "previous forecast (origin %s) does not cover %s: no anomaly flag",
            rfc3339(previous.origin),
            rfc3339(forecast.origin),
        )
        return None
    flags = anomaly_flags(prev, forecast.origin, last)
    known = np.isfinite(prev.lower[:, offset // previous.step - 1])
    return _family(
        "foresight_anomaly",
        "1 when the latest actual is outside the band an earlier forecast gave for now.",
        [(labels[i], float(flags[i])) for i in range(len(labels)) if known[i]],
    )


def _realised_error_family(
    labels: list[dict[str, str]], realised: Mapping[str, Mapping[str, FloatArray]]
) -> Metric:
    err: _Samples = []
    for text, by_metric in realised.items():
        for metric, values in by_metric.items():
            vals = np.asarray(values, dtype=np.float64)
            err.extend(
                ({**labels[i], "horizon": text, "metric": metric}, vals[i])
                for i in range(len(labels))
                if np.isfinite(vals[i])
            )
    return _family("foresight_forecast_error", "Realised error of earlier forecasts.", err)


def realised_errors(
    past: Sequence[Forecast], actual: Panel, horizons: Sequence[str]
) -> dict[str, dict[str, FloatArray]]:
    """MAE and MAPE per series of earlier forecasts against what happened, for each horizon.

    For horizon ``h`` every forecast in ``past`` contributes the error of its step ``h`` when that
    time is on ``actual``'s grid and observed. Rows follow ``actual.keys``; NaN where nothing
    could be compared. MAPE skips actual values of 0 and is a fraction.
    """
    index = {tuple(sorted(k.items())): i for i, k in enumerate(actual.keys)}
    out: dict[str, dict[str, FloatArray]] = {}
    for text in horizons:
        seconds = duration_seconds(text)
        abs_err: list[list[float]] = [[] for _ in actual.keys]
        pct_err: list[list[float]] = [[] for _ in actual.keys]
        for f in past:
            h, rem = divmod(seconds, f.step)
            if rem or not 1 <= h <= f.horizon:
                continue
            t = f.origin + h * f.step
            col, crem = divmod(t - actual.start, actual.step)
            if crem or not 0 <= col < actual.n_steps:
                continue
            for r, key in enumerate(f.keys):
                i = index.get(tuple(sorted(key.items())))
                if i is None:
                    continue
                a, p = actual.values[i, col], f.point[r, h - 1]
                if np.isfinite(a) and np.isfinite(p):
                    abs_err[i].append(abs(a - p))
                    if a != 0:
                        pct_err[i].append(abs(a - p) / abs(a))
        out[text] = {
            "mae": np.array([float(np.mean(e)) if e else math.nan for e in abs_err]),
            "mape": np.array([float(np.mean(e)) if e else math.nan for e in pct_err]),
        }
    return out


def data_stale_family(
    keys: Sequence[Mapping[str, str]], stale: npt.ArrayLike, *, task: str, namespace: str
) -> Metric:
    """``foresight_data_stale`` for every series read: 1 where its source data stopped, else 0."""
    base = {"task": task, "namespace": namespace}
    return _family(
        "foresight_data_stale",
        "1 when the series' newest source sample is several steps old (no forecast from now is written).",
        [
            ({**series_labels(k), **base}, float(bool(s)))
            for k, s in zip(keys, np.asarray(stale), strict=True)
        ],
    )


class ForecastCollector(Collector):
    """A collector that yields fixed metric families (register it in a fresh registry)."""

    def __init__(self, families: Sequence[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> list[Metric]:
        return list(self._families)


def to_registry(families: Sequence[Metric], registry: CollectorRegistry | None = None) -> CollectorRegistry:
    """``families`` registered in ``registry`` (a new, empty one when omitted)."""
    reg = registry if registry is not None else CollectorRegistry(auto_describe=False)
    reg.register(ForecastCollector(families))
    return reg


def exposition(families: Sequence[Metric]) -> bytes:
    """The Prometheus text exposition of ``families``."""
    return generate_latest(to_registry(families))


# ---- capacity recommendations (spec.recommendation, issue 15) ------------------------------------


def recommendation_metrics(
    *,
    task: str,
    namespace: str,
    horizon: str,
    predicted: Recommendation,
    current: Recommendation,
    changed: bool,
) -> list[Metric]:
    """The gauge families of one run's capacity recommendation (pure).

    Per load (``load="predicted"`` at ``horizon``, ``load="current"`` for the latest actual values):
    ``foresight_recommendation_covered`` (0 when the load lies outside what the library covers, and
    then nothing else for that load), and for a covered load ``foresight_recommended_nodes``,
    ``_shards``, ``_replicas``, ``_proxies``, ``_cost`` and
    ``foresight_recommendation_confidence``, all labelled with the recommended ``architecture``
    (the cost also with ``currency`` and ``period``, the library's);
    plus ``foresight_recommendation_changed`` (1 when the predicted load needs another architecture
    or node count than the current one). Every sample carries ``library`` and ``library_version``.
    """
    base = {
        "task": task,
        "namespace": namespace,
        "library": predicted.library,
        "library_version": predicted.version,
        "horizon": horizon,
    }
    loads = (("predicted", predicted), ("current", current))
    families = [
        _family(
            "foresight_recommendation_covered",
            "1 when the load lies within what the library covers.",
            [({**base, "load": load}, float(rec.covered)) for load, rec in loads],
        ),
        _family(
            "foresight_recommendation_changed",
            "1 when the predicted load needs another architecture or node count than the current one.",
            [(base, float(changed))],
        ),
    ]
    sized = [
        ({**base, "load": load, "architecture": str(rec.architecture_type)}, rec)
        for load, rec in loads
        if rec.covered
    ]
    if not sized:
        return families
    for name, doc, value in _RECOMMENDED:
        families.append(_family(name, doc, [(labels, value(rec)) for labels, rec in sized]))
    cost = [
        ({**labels, "currency": rec.currency, "period": rec.cost_period}, float(rec.estimated_cost or 0))
        for labels, rec in sized
    ]
    families.append(_family("foresight_recommended_cost", "Estimated cost of the recommendation.", cost))
    return families


_RECOMMENDED: tuple[tuple[str, str, Callable[[Recommendation], float]], ...] = (
    ("foresight_recommended_nodes", "Recommended database nodes (replicas included).",
     lambda r: float(r.node_count or 0)),
    ("foresight_recommended_shards", "Recommended shards.", lambda r: float(r.shard_count or 0)),
    ("foresight_recommended_replicas", "Recommended replicas per shard.",
     lambda r: float(r.replica_count or 0)),
    ("foresight_recommended_proxies", "Recommended proxies / poolers.", lambda r: float(r.proxy_count or 0)),
    ("foresight_recommendation_confidence", "Weighted vote share of the recommended architecture.",
     lambda r: float(r.confidence or 0)),
)  # fmt: skip
