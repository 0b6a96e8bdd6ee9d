"""The results of a sharded run's shards folded into one run's result (pure).

Each shard runs the single-pod pipeline over its own series and reports as a single pod does
(:class:`~foresight.contract.forecast.ForecastRunResult`); ``status`` (the operator) and ``foresight
run --local`` of a sharded task show one task. What adds up is added up (series, data-quality
counts, the alert's events, decisions and their outcomes), what is a mean is weighted by
the shards' series (backtest errors, band coverage), and what each shard chose for itself (the
models per series, the alert rule on its own backtest) is summarised, saying so where the shards
disagree. Each shard's gauges keep what that shard chose.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from foresight.contract.forecast import BacktestScore, DataQualityReport, ForecastRunResult

__all__ = ["merge_alerts", "merge_backtests", "merge_bands", "merge_models", "merge_quality"]

Obj = dict[str, Any]
Shard = tuple[int, ForecastRunResult]
"""A shard's index and its result."""

STALE_SHARDS_NAMED = 3
"""Shards whose stale-data message the merged ``StaleData`` message quotes (the rest are counted)."""

_PICKS = re.compile(r"^auto\((.*)\)$")


def merge_models(models: Sequence[str | None], series: Sequence[int]) -> str | None:
    """The shards' model summaries as one: ``auto(ets:12,lstm:30)`` counts added up; one model kept."""
    given = [(m, n) for m, n in zip(models, series, strict=True) if m]
    if not given:
        return None
    picks: Counter[str] = Counter()
    for model, n in given:
        m = _PICKS.match(model)
        if m is None:
            picks[model] += n
            continue
        for part in filter(None, m.group(1).split(",")):
            name, _, k = part.rpartition(":")
            picks[name] += int(k) if k.isdigit() else 0
    if all(_PICKS.match(m) for m, _ in given):
        return "auto(" + ",".join(f"{m}:{n}" for m, n in sorted(picks.items())) + ")"
    return ",".join(sorted(picks))


def merge_backtests(results: Sequence[ForecastRunResult]) -> list[BacktestScore]:
    """Each model's backtest errors over all shards: the shards' means weighted by their series."""
    sums: dict[str, list[float]] = {}
    for r in results:
        n = float(r.series_count or 0)
        for row in r.backtest or []:
            acc = sums.setdefault(row.model, [0.0, 0.0, 0.0, 0.0])
            if row.mase is not None:
                acc[0] += row.mase * n
                acc[1] += n
            if row.mae is not None:
                acc[2] += row.mae * n
                acc[3] += n
    return [
        BacktestScore(model=m, mase=a[0] / a[1] if a[1] else None, mae=a[2] / a[3] if a[3] else None)
        for m, a in sums.items()
    ]


def merge_bands(shards: Sequence[Shard]) -> Obj | None:
    """``status.bands``: the level (one spec, one level) and, per horizon, the coverage of the shards
    that measured it, weighted by their series (a horizon no shard measured stays without one)."""
    given = [(r.bands, float(r.series_count or 0)) for _, r in shards if r.bands]
    if not given:
        return None
    if len(given) == 1:
        return dict(given[0][0])
    sums: dict[str, list[float]] = {}
    for bands, n in given:
        for row in bands.get("coverage") or []:
            acc = sums.setdefault(str(row.get("horizon")), [0.0, 0.0])
            if row.get("coverage") is not None:
                acc[0] += float(row["coverage"]) * n
                acc[1] += n
    coverage = [{"horizon": h, **({"coverage": a[0] / a[1]} if a[1] else {})} for h, a in sums.items()]
    return {"level": given[0][0].get("level"), "coverage": coverage}


def merge_alerts(shards: Sequence[Shard]) -> Obj | None:
    """``status.alert``: the rule chosen for the most series (each shard chose on its own backtest),
    with the evidence of the shards that chose it summed: events, decisions and the decision
    counts added (so precision and recall are exact), the median lead a median of the shards'
    medians weighted by their true alerts (the shards' lead times themselves are not reported)."""
    given = [(i, r.alert, r.series_count or 0) for i, r in shards if r.alert]
    if not given:
        return None
    if len(given) == 1:
        return dict(given[0][1])
    groups: dict[tuple[str, str], list[tuple[int, Mapping[str, Any], int]]] = {}
    for i, alert, n in given:
        groups.setdefault((str(alert.get("rule")), str(alert.get("within"))), []).append((i, alert, n))
    key = max(groups, key=lambda k: (sum(n for _, _, n in groups[k]), -groups[k][0][0]))
    members = groups[key]
    merged: Obj = {"rule": key[0], "within": key[1], **_summed_evidence([a for _, a, _ in members])}
    if len(groups) == 1:
        merged["reason"] = f"chosen by each of {len(members)} shards, evidence summed: " + str(
            members[0][1].get("reason") or ""
        )
    else:
        chose = "; ".join(
            f"{rule} within {within} in shard(s) {', '.join(str(i) for i, _, _ in ms)}"
            for (rule, within), ms in groups.items()
        )
        merged["reason"] = (
            f"the shards chose different rules on their own backtests ({chose}); each shard's gauges use "
            "its own; shown: the rule of the most series, with its shards' evidence summed"
        )
    return {k: v for k, v in merged.items() if v is not None}


def _summed_evidence(alerts: Sequence[Mapping[str, Any]]) -> Obj:
    """Events and decisions added up; precision and recall from the shards' decision counts added
    up (exact; unknown when a shard's counts are, i.e. it had too little evidence to score)."""
    events = sum(int(a.get("events") or 0) for a in alerts)
    decisions = sum(int(a.get("decisions") or 0) for a in alerts)
    counts = [(a.get("truePositives"), a.get("falsePositives"), a.get("falseNegatives")) for a in alerts]
    known = all(None not in c for c in counts)
    tp = sum(int(c[0] or 0) for c in counts)
    fp = sum(int(c[1] or 0) for c in counts)
    fn = sum(int(c[2] or 0) for c in counts)
    leads = sorted(
        (float(a["medianLeadSeconds"]), float(a.get("truePositives") or 0))
        for a in alerts
        if a.get("medianLeadSeconds") is not None
    )
    merged: Obj = {"events": events, "decisions": decisions, "medianLeadSeconds": _weighted_median(leads)}
    if known:
        merged.update(truePositives=tp, falsePositives=fp, falseNegatives=fn,
                      precision=tp / (tp + fp) if tp + fp else None,
                      recall=tp / (tp + fn) if tp + fn else None)  # fmt: skip
    return merged


def _weighted_median(pairs: Sequence[tuple[float, float]]) -> float | None:
    """The value at which the sorted ``(value, weight)`` pairs reach half their weight (equal
    weights when none has any)."""
    if not pairs:
        return None
    weights = [w for _, w in pairs] if any(w > 0 for _, w in pairs) else [1.0] * len(pairs)
    half, seen = sum(weights) / 2, 0.0
    for (value, _), w in zip(pairs, weights, strict=True):
        seen += w
        if seen >= half:
            return value
    return pairs[-1][0]


def merge_quality(shards: Sequence[Shard]) -> DataQualityReport | None:
    """``status.dataQuality`` over all shards: the counts added up, each shard's warnings and
    stale-data message prefixed with its shard."""
    given = [(i, r.data_quality) for i, r in shards if r.data_quality is not None]
    if not given:
        return None
    if len(given) == 1:
        return given[0][1]
    counts = [f for f in DataQualityReport.model_fields if f not in ("warnings", "stale_message")]
    merged = DataQualityReport(**{f: sum(getattr(q, f) for _, q in given) for f in counts})
    merged.warnings = [f"shard {i}: {w}" for i, q in given for w in q.warnings]
    stale = [(i, q.stale_message) for i, q in given if q.stale_series and q.stale_message]
    if stale:
        named = "; ".join(f"shard {i}: {m[:300]}" for i, m in stale[:STALE_SHARDS_NAMED])
        more = len(stale) - STALE_SHARDS_NAMED
        merged.stale_message = named + (f"; and {more} more shard(s) with stale series" if more > 0 else "")
    return merged
