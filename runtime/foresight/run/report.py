"""Human-readable output of a ForecastTask run: kubectl-like status, backtest and forecast tables.

Pure formatting (strings in, strings out), shared by ``foresight run --local`` and
``foresight demo``. Values are printed in the metric's unit, ``source.unit``
(:func:`format_value`): bytes in KiB / MiB..., percentages with ``%``, other units after the
number, plain numbers when the task names none. Times are RFC 3339.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from foresight.api.durations import duration_seconds, format_duration
from foresight.console import table
from foresight.forecast.result import RunEvent, RunResult
from foresight.timeseries import rfc3339, series_text

__all__ = [
    "format_backtest",
    "format_bytes",
    "format_event",
    "format_forecasts",
    "format_seconds",
    "format_status",
    "format_value",
    "uncertainty_lines",
]


def format_seconds(seconds: float) -> str:
    """``3h20m``, ``45m``, ``0s`` (already over), ``>horizon`` for infinity, ``-`` for unknown."""
    if math.isnan(seconds):
        return "-"
    if math.isinf(seconds):
        return ">horizon"
    s = round(seconds)
    if s == 0:
        return "now"
    d, rem = divmod(s, 86400)
    h, rem = divmod(rem, 3600)
    m = rem // 60
    if d:
        return f"{d}d{h}h"
    if h:
        return f"{h}h{m:02d}m" if m else f"{h}h"
    return f"{m}m" if m else f"{s}s"


def format_bytes(value: float) -> str:
    """Bytes in the largest IEC unit that keeps the number at least 1 (``1.50GiB``, ``512B``)."""
    if not math.isfinite(value):
        return "-"
    for unit, size in (("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(value) >= size:
            return f"{value / size:.2f}{unit}"
    return f"{value:.4g}B"


def format_value(value: float, unit: str | None) -> str:
    """``value`` in ``unit`` (``source.unit``): ``bytes`` as :func:`format_bytes`, ``seconds`` as a
    duration, ``percent`` (0-100) and ``ratio`` (0-1) as a percentage, another unit after the
    number, none as a plain number; ``-`` for NaN and infinities."""
    if not math.isfinite(value):
        return "-"
    if unit == "bytes":
        return format_bytes(value)
    if unit == "seconds":
        return f"{value:.3g}s" if abs(value) < 60 else ("-" if value < 0 else format_seconds(value))
    if unit == "percent":
        return f"{value:.1f}%"
    if unit == "ratio":
        return f"{100 * value:.1f}%"
    return f"{value:.4g}" + (f" {unit}" if unit else "")


def _age(t: float | None, now: float) -> str:
    return "-" if t is None else format_seconds(max(0.0, now - t)).replace("now", "0s")


def _iso(t: float | None) -> str:
    return "-" if t is None else rfc3339(t)


def _quality_lines(result: RunResult) -> list[str]:
    q = result.data_quality
    if q is None:
        return []
    counts = (
        f"{q.series} series; missing points {q.missing_points}, late {q.late_series}, stale "
        f"{q.stale_series}, out of range {q.out_of_range_series}, clipped {q.clipped_series}, outliers "
        f"{q.outlier_series}, unusable capacity {q.invalid_capacity_series}, dropped {q.dropped_series}"
    )
    return [f"  Data Quality:       {counts}"]


def uncertainty_lines(bands: Mapping[str, Any] | None, alert: Mapping[str, Any] | None) -> list[str]:
    """``status.bands`` and ``status.alert`` as ``kubectl describe`` words them."""
    lines = []
    if bands:
        coverages = [c for c in bands.get("coverage", []) if "coverage" in c]
        measured = ", ".join(f"{c['horizon']} {c['coverage']:.2f}" for c in coverages)
        coverage = measured or "not measured (one backtest fold)"
        lines.append(f"  Bands:              level {bands['level']:g}; out-of-sample coverage {coverage}")
    if alert:
        known = alert.get("precision") is not None and alert.get("recall") is not None
        evidence = (
            f"precision {alert['precision']:.2f}, recall {alert['recall']:.2f}"
            if known
            else "precision and recall unknown"
        )
        rule = f"rule {alert['rule']} within {alert['within']}"
        counts = f"{alert.get('events', 0)} real crossing(s) in {alert.get('decisions', 0)} decisions"
        lines.append(f"  Alert:              {rule}; backtest: {evidence}, {counts}")
        if alert.get("reason"):
            lines.append(f"    Reason:           {alert['reason']}")
    return lines


def format_status(result: RunResult, *, name: str, namespace: str, now: float) -> str:
    """``kubectl get ft -o wide`` plus the interesting part of ``kubectl describe``."""
    ready = "True" if result.ok else "False"
    head = table(
        ["NAMESPACE", "NAME", "READY", "PHASE", "SERIES", "MODEL", "LAST-TRAIN", "LAST-PREDICT"],
        [[namespace, name, ready, result.phase, result.series_count, result.model or "-",
          _age(result.last_train_time, now), _age(result.last_predict_time, now)]],
    )  # fmt: skip
    lines = [head, "", "Status:"]
    lines.append(f"  Phase:              {result.phase}")
    lines.append(f"  Series Count:       {result.series_count}")
    lines.append(f"  Model:              {result.model or '-'}")
    lines.append(f"  Artifact URI:       {result.artifact_uri or '-'}")
    lines.append(f"  Last Train Time:    {_iso(result.last_train_time)}")
    lines.append(f"  Last Predict Time:  {_iso(result.last_predict_time)}")
    rec = result.recommendation
    if rec:
        lines.append(f"  Recommendation:     {rec.get('reason')}: {rec.get('message')}")
        cases = (rec.get("predicted") or {}).get("cases")
        if cases:
            lines.append(f"    Cases:            {', '.join(cases)}")
    lines += _quality_lines(result)
    lines += uncertainty_lines(result.bands, result.alert)
    lines.append("  Conditions:")
    lines.append(f"    Type: Ready   Status: {ready}   Reason: {result.reason}")
    lines.append(f"    Message: {result.message}")
    quality = result.data_quality
    if quality is not None and quality.stale_series:
        lines.append("    Type: StaleData   Status: True   Reason: SourceDataStale")
        lines.append(f"    Message: {quality.stale_message}")
    warnings = [*result.warnings, *(quality.warnings if quality is not None else [])]
    if warnings:
        lines.append("  Warnings:")
        lines += [f"    - {w}" for w in warnings]
    return "\n".join(lines)


def format_backtest(result: RunResult, *, unit: str | None = None) -> str:
    """Backtest errors per model, best first, with the ratio to predict_linear and seasonal naive;
    MAE in ``unit``."""
    rows = sorted(result.backtest, key=lambda s: (s.mase is None, s.mase if s.mase is not None else 0.0))
    by = {s.model: s for s in rows}

    def ratio(model_mase: float | None, base: str) -> str:
        ref = by.get(base)
        if model_mase is None or ref is None or not ref.mase:
            return "-"
        return f"{model_mase / ref.mase:.2f}"

    body = [
        [s.model, "-" if s.mase is None else f"{s.mase:.3f}",
         "-" if s.mae is None else format_value(s.mae, unit),
         ratio(s.mase, "linear"), ratio(s.mase, "seasonal_naive")]
        for s in rows
    ]  # fmt: skip
    return table(["MODEL", "MASE", "MAE", "vs predict_linear", "vs seasonal_naive"], body)


def format_forecasts(
    result: RunResult,
    *,
    limit: int = 15,
    horizons: Sequence[str] | None = None,
    unit: str | None = None,
    ratio: float | None = None,
) -> str:
    """One row per series, soonest time-to-threshold first: labels, last value, forecasts, TTT.

    Args:
        horizons: the forecast columns, as durations (``output.horizons``); at most 4 are shown
            (the shortest, then the longest ones). Default: 6 and 24 steps.
        unit: ``source.unit`` of the values.
        ratio: ``threshold.ratio``, for the time-to-threshold header (``TIME-TO-95%``).
    """
    fc, panel = result.forecast, result.panel
    if fc is None or panel is None:
        return "(no forecast)"
    n = fc.point.shape[0]
    last = np.array([_last(row) for row in panel.values])
    thr = result.threshold
    ttt = thr.seconds if thr is not None else np.full(n, np.nan)
    ttt_up = thr.seconds_upper if thr is not None else np.full(n, np.nan)
    order = sorted(range(n), key=lambda i: (_sort_key(float(ttt[i])), _sort_key(float(ttt_up[i]))))
    columns = _horizon_columns(horizons, fc.step, fc.horizon)
    headers = ["SERIES", "LAST"] + (["USED%"] if panel.capacity is not None else [])
    headers += [f"FORECAST+{label}" for label, _ in columns]
    if thr is not None:
        headers += [f"TIME-TO-{100 * (ratio or 1.0):g}%", "EARLIEST (upper)"]
    headers.append("MODEL")
    rows = []
    for i in order[:limit]:
        row: list[Any] = [series_text(fc.keys[i]), format_value(last[i], unit)]
        if panel.capacity is not None:
            cap = panel.capacity[i]
            row.append(f"{100 * last[i] / cap:.1f}" if math.isfinite(cap) and cap > 0 else "-")
        row += [format_value(fc.point[i, h - 1], unit) for _, h in columns]
        if thr is not None:
            row += [format_seconds(ttt[i]), format_seconds(ttt_up[i])]
        rows.append([*row, fc.model[i]])
    more = f"\n... and {n - limit} more series" if n > limit else ""
    return table(headers, rows) + more


def _horizon_columns(horizons: Sequence[str] | None, step: int, horizon: int) -> list[tuple[str, int]]:
    """``(label, steps)`` of the forecast columns: whole steps within the forecast, at most 4."""
    if horizons is None:
        steps = [h for h in (6, 24) if h <= horizon] or [horizon]
    else:
        secs = [duration_seconds(h) for h in horizons]
        steps = sorted({s // step for s in secs if s % step == 0 and 1 <= s // step <= horizon})
    if len(steps) > 4:
        steps = [steps[0], *steps[-3:]]
    return [(format_duration(h * step), h) for h in steps]


def _last(row: np.ndarray[Any, Any]) -> float:
    ok = np.flatnonzero(np.isfinite(row))
    return float(row[ok[-1]]) if ok.size else math.nan


def _sort_key(x: float) -> float:
    return math.inf if math.isnan(x) else x


def format_event(event: RunEvent) -> str | None:
    """One progress line, or ``None`` for events too chatty to print."""
    if event.kind == "done":
        return None
    return event.message
