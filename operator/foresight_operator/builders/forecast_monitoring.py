"""What a ForecastTask's alerting rules and its dashboard share: which series they select, under
which label names the runtime writes them, the predict cadence alerts are timed by, and the
metadata of the objects (owned by the task).

The gauges a run writes carry the series' ``groupBy`` labels plus ``task`` and ``namespace``
(:mod:`foresight.forecast.writeback`). A ``groupBy`` label that clashes with a label Foresight or
the Pushgateway adds (``namespace``, ``job``...) is written with a ``series_`` prefix, so a rule or
a panel must use the written name: :func:`written_label` is that mapping. The operator may not
import the runtime's writer (the layers in pyproject.toml), so the rule is repeated here and a
unit test checks it against the runtime's own ``series_labels`` for every reserved name.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from foresight.api.durations import format_compound
from foresight.api.forecasttask import FORECAST_TASK, OUTPUT_LABELS, ForecastTaskSpec

from ..reconcile.errors import SpecError
from ..reconcile.names import owner_labels
from ..schedule import Cadence

__all__ = [
    "RESERVED_LABELS",
    "child_metadata",
    "predict_interval",
    "prom_duration",
    "promql_string",
    "selector",
    "series_label_names",
    "written_label",
]

Obj = dict[str, Any]
KIND = FORECAST_TASK.kind

RESERVED_LABELS = OUTPUT_LABELS
"""Label names the runtime's write-back reserves (the API's one definition, which
``foresight.prometheus.labels.RESERVED_LABELS`` uses too)."""

CRON_SLOTS = 200
"""Cron slots looked at to find a cron schedule's longest gap between predictions (a weekday-only
schedule has its weekend gap within 200 slots of any hourly or daily expression)."""
_CRON_ANCHOR = datetime(2026, 1, 5, tzinfo=UTC)  # fixed, so the same spec always builds the same rules


def written_label(name: str) -> str:
    """The label name under which the runtime writes a ``groupBy`` label."""
    if name.startswith("__"):  # reserved for Prometheus' internal labels
        name = "series" + name
    return "series_" + name if name in RESERVED_LABELS else name


def series_label_names(spec: ForecastTaskSpec) -> list[str]:
    """The written names of the labels that identify one series of the task (empty when the task
    keeps every label of its query, ``groupBy: []`` with ``aggregation: none``, or merges all)."""
    return [written_label(g) for g in spec.source.group_by]


def promql_string(value: str) -> str:
    """A PromQL double-quoted string literal (PromQL reads Go's escapes, which JSON's are a subset of)."""
    return json.dumps(value, ensure_ascii=False)


def selector(name: str, namespace: str, **extra: str) -> str:
    """``{namespace="ns",task="name",...}``: the matchers of one task's gauges."""
    matchers = {"namespace": namespace, "task": name, **extra}
    return "{" + ",".join(f"{k}={promql_string(v)}" for k, v in matchers.items()) + "}"


def predict_interval(spec: ForecastTaskSpec) -> timedelta:
    """How often the task writes forecasts: ``schedule.predictEvery``, or with ``schedule.cron``
    the longest gap between two consecutive cron slots (a staleness rule must wait that long)."""
    try:
        cadence = Cadence.from_spec(spec)
    except ValueError as exc:
        raise SpecError(str(exc), reason="InvalidSchedule", field="schedule") from exc
    if cadence.cron is None:
        return cadence.predict_every
    slot, longest = cadence.next_predict(_CRON_ANCHOR), timedelta(0)
    for _ in range(CRON_SLOTS):
        nxt = cadence.next_predict(slot)
        longest, slot = max(longest, nxt - slot), nxt
    return longest


def prom_duration(interval: timedelta) -> str:
    """A Prometheus duration for ``interval``, rounded up to whole seconds (the API's grammar)."""
    return format_compound(max(0, math.ceil(interval.total_seconds())))


def child_metadata(
    name: str,
    namespace: str,
    *,
    child: str,
    owner: Mapping[str, Any],
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> Obj:
    """``metadata`` of an object the task owns: its name, the owner labels plus ``labels``, and
    ``owner`` as the one ``ownerReference`` (garbage collection deletes the object with the task)."""
    missing = [k for k in ("apiVersion", "kind", "name", "uid") if not owner.get(k)]
    if missing:
        raise ValueError(f"owner reference {dict(owner)} lacks {missing}: pass the task's ownerReference")
    meta: Obj = {
        "name": child,
        "namespace": namespace,
        "labels": {**owner_labels(KIND, name), **(labels or {})},
        "ownerReferences": [dict(owner)],
    }
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta
