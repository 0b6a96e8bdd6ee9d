"""Human-readable output of a ForecastTask run: kubectl-like status, backtest and forecast tables.

Pure formatting (strings in, strings out), shared by ``foresight run --local`` and
``foresight demo``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from foresight.console import table
from foresight.forecast.result import RunEvent, RunResult

__all__ = [
    "format_backtest",
    "format_bytes",
    "format_event",
    "format_forecasts",
    "format_seconds",
    "format_status",
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
    if not math.isfinite(value):
        return "-"
    for unit, size in (("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if abs(value) >= size:
            return f"{value / size:.2f}{unit}"
    return f"{value:.4g}"


def _age(t: float | None, now: float) -> str:
    return "-" if t is None else format_seconds(max(0.0, now - t)).replace("now", "0s")


def _iso(t: float | None) -> str:
    return "-" if t is None else datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
    lines.append("  Conditions:")
    lines.append(f"    Type: Ready   Status: {ready}   Reason: {result.reason}")
    lines.append(f"    Message: {result.message}")
    if result.warnings:
        lines.append("  Warnings:")
        lines += [f"    - {w}" for w in result.warnings]
    return "\n".join(lines)


def format_backtest(result: RunResult) -> str:
    """Backtest errors per model, best first, with the ratio to predict_linear and seasonal naive."""
    rows = sorted(result.backtest, key=lambda s: (s.mase is None, s.mase if s.mase is not None else 0.0))
    by = {s.model: s for s in rows}

    def ratio(model_mase: float | None, base: str) -> str:
        ref = by.get(base)
        if model_mase is None or ref is None or not ref.mase:
            return "-"
        return f"{model_mase / ref.mase:.2f}"

    body = [
        [s.model, "-" if s.mase is None else f"{s.mase:.3f}", "-" if s.mae is None else format_bytes(s.mae),
         ratio(s.mase, "linear"), ratio(s.mase, "seasonal_naive")]
        for s in rows
    ]  # fmt: skip
    return table(["MODEL", "MASE", "MAE", "vs predict_linear", "vs seasonal_naive"], body)


def format_forecasts(result: RunResult, *, limit: int = 15, horizons: Sequence[int] = (6, 24)) -> str:
    """One row per series, soonest time-to-threshold first: labels, last value, forecasts, TTT."""
    fc, panel = result.forecast, result.panel
    if fc is None or panel is None:
        return "(no forecast)"
    n = fc.point.shape[0]
    last = np.array([_last(row) for row in panel.values])
    thr = result.threshold
    ttt = thr.seconds if thr is not None else np.full(n, np.nan)
    ttt_up = thr.seconds_upper if thr is not None else np.full(n, np.nan)
    order = sorted(range(n), key=lambda i: (_sort_key(float(ttt[i])), _sort_key(float(ttt_up[i]))))
    hs = [h for h in horizons if h <= fc.horizon]
    headers = ["SERIES", "LAST", "USED%"] + [f"FORECAST+{h * fc.step // 3600}h" for h in hs]
    headers += ["TIME-TO-95%", "EARLIEST (upper)", "MODEL"]
    rows = []
    for i in order[:limit]:
        cap = panel.capacity[i] if panel.capacity is not None else math.nan
        used = f"{100 * last[i] / cap:.1f}" if math.isfinite(cap) and cap else "-"
        row: list[Any] = [_key_text(fc.keys[i]), format_bytes(last[i]), used]
        row += [format_bytes(fc.point[i, h - 1]) for h in hs]
        row += [format_seconds(ttt[i]), format_seconds(ttt_up[i]), fc.model[i]]
        rows.append(row)
    more = f"\n... and {n - limit} more series" if n > limit else ""
    return table(headers, rows) + more


def _last(row: np.ndarray[Any, Any]) -> float:
    ok = np.flatnonzero(np.isfinite(row))
    return float(row[ok[-1]]) if ok.size else math.nan


def _sort_key(x: float) -> float:
    return math.inf if math.isnan(x) else x


def _key_text(key: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in key.items())


def format_event(event: RunEvent) -> str | None:
    """One progress line, or ``None`` for events too chatty to print."""
    if event.kind == "done":
        return None
    return event.message
