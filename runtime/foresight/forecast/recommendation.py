"""A ForecastTask run's capacity recommendation: the step after ``predict`` (``spec.recommendation``).

The run has just forecast every series; this step turns that forecast into the architecture the
*predicted* load needs, from the nearest cases of an active model library (issue 15, seed 000):

1. read the library's active version from the task's artifact store, under
   ``modellibraries/<namespace>/<library>/`` (:class:`foresight.library.store.LibraryStore`: the
   pointer the ModelLibrary's fetch Job switched, every file checked against its sha256);
2. map the forecast at the recommendation's horizon to the recommender's inputs (each input the
   sum / max / mean of the series its selector matches, scaled; the constants as given) and ask the
   recommender (:func:`foresight.library.forecast_inputs.recommend_from_forecast`);
3. do the same for the latest actual values, the load *today*, and compare the two.

The outcome is the status document (:class:`foresight.api.recommendation.RecommendationStatus` as
JSON) and the gauge families (:func:`foresight.forecast.writeback.recommendation_metrics`). A
recommendation that cannot be made (the library is not active, a selector matches no series) never
fails the run: the forecasts were written; the status says why there is no recommendation and what
to do, and a warning repeats it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import Metric

from foresight.api.durations import duration_seconds, format_duration
from foresight.api.recommendation import RecommendationReason, RecommendationSpec
from foresight.artifacts import ArtifactError, ArtifactStore
from foresight.contract.library import store_prefix
from foresight.library.errors import LibraryError, LibraryReason
from foresight.library.forecast_inputs import (
    InputSource,
    inputs_from_values,
    recommend_from_forecast,
    recommendation_changed,
)
from foresight.library.recommend import Recommendation, Recommender
from foresight.library.records import NUMERIC_INPUTS
from foresight.library.store import LibraryStore
from foresight.timeseries import FloatArray, Forecast

from .writeback import recommendation_metrics

__all__ = ["RunRecommendation", "architecture_status", "input_sources", "recommend_for_run"]

log = logging.getLogger(__name__)


@dataclass
class RunRecommendation:
    """What the recommendation step produced: status, gauges, and the warnings of the run."""

    status: dict[str, Any]
    """``status.recommendation`` (camelCase, as the API's ``RecommendationStatus``)."""
    families: list[Metric] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        return str(self.status.get("message") or "")

    @property
    def changed(self) -> bool:
        return bool(self.status.get("changed"))


def input_sources(spec: RecommendationSpec, horizon_seconds: int) -> list[InputSource]:
    """The spec's forecast inputs as the mapping's :class:`InputSource` (in the format's input order)."""
    sources = []
    for name in NUMERIC_INPUTS:
        src = getattr(spec.inputs, name)
        if src is not None:
            sources.append(
                InputSource(
                    input=name,
                    horizon_seconds=horizon_seconds,
                    match=dict(src.series),
                    aggregate=src.aggregate,
                    bound=src.bound,
                    scale=src.scale,
                )
            )
    return sources


def _constants(spec: RecommendationSpec) -> dict[str, Any]:
    return {k: v for k, v in spec.constants.model_dump(by_alias=True).items() if v is not None}


def architecture_status(rec: Recommendation, inputs: Mapping[str, float | bool]) -> dict[str, Any]:
    """One load's answer as the API's ``RecommendedArchitecture`` (``None`` fields left out)."""
    doc: dict[str, Any] = {
        "covered": rec.covered,
        "architecture": rec.architecture_type,
        "nodes": rec.node_count,
        "shards": rec.shard_count,
        "replicas": rec.replica_count,
        "proxies": rec.proxy_count,
        "estimatedCost": None if rec.estimated_cost is None else round(rec.estimated_cost, 2),
        "currency": rec.currency if rec.covered else None,
        "costPeriod": rec.cost_period if rec.covered else None,
        "confidence": None if rec.confidence is None else round(rec.confidence, 4),
        "cases": rec.case_ids,
        "inputs": {k: round(float(v), 6) for k, v in inputs.items() if not isinstance(v, bool)},
        "reasons": [r[:512] for r in rec.reasons[:10]],
    }
    return {k: v for k, v in doc.items() if v is not None and v != []}


def _describe(rec: Recommendation) -> str:
    if not rec.covered:
        return "outside what the library covers (" + "; ".join(rec.reasons[:2]) + ")"
    return f"{rec.architecture_type} with {rec.node_count} nodes"


def _failed(
    spec: RecommendationSpec, horizon: str, now: float, reason: str, message: str
) -> RunRecommendation:
    status = {
        "library": spec.library,
        "horizon": horizon,
        "reason": reason,
        "message": message,
        "time": _iso(now),
    }
    return RunRecommendation(status=status, warnings=[f"no capacity recommendation: {message}"])


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def recommend_for_run(
    spec: RecommendationSpec,
    *,
    forecast: Forecast,
    latest: FloatArray,
    store: ArtifactStore | None,
    task: str,
    namespace: str,
    now: float,
) -> RunRecommendation:
    """The recommendation for the predicted load (at ``spec.horizon``, else the forecast's last step)
    and for ``latest`` (the actual value per forecast row); never raises for a missing library or
    unmatched inputs (see the module docstring)."""
    seconds = duration_seconds(spec.horizon) if spec.horizon else forecast.horizon * forecast.step
    horizon = format_duration(seconds)
    if store is None:
        return _failed(
            spec, horizon, now, RecommendationReason.LIBRARY_UNAVAILABLE,
            "the run has no artifact store to read the library from: set spec.artifacts",
        )  # fmt: skip
    library_store = LibraryStore(store, store_prefix(namespace))
    try:
        library, ref = library_store.load(spec.library)
    except LibraryError as exc:
        if exc.reason in (LibraryReason.INACTIVE, LibraryReason.SOURCE_NOT_FOUND):
            return _failed(
                spec, horizon, now, RecommendationReason.LIBRARY_NOT_ACTIVE,
                f"library {spec.library} has no active version (no pointer at "
                f"{library_store.pointer_uri(spec.library)}): apply a ModelLibrary in namespace "
                f"{namespace} with active: true whose spec.store is this task's spec.artifacts store, or fix "
                "spec.recommendation.library",
            )  # fmt: skip
        return _failed(
            spec, horizon, now, RecommendationReason.LIBRARY_UNAVAILABLE, f"{exc.reason}: {exc.message}"
        )
    except ArtifactError as exc:
        return _failed(spec, horizon, now, RecommendationReason.LIBRARY_UNAVAILABLE, str(exc))
    recommender = Recommender(library, k=spec.neighbours)
    sources = input_sources(spec, seconds)
    fixed = _constants(spec)
    try:
        predicted = recommend_from_forecast(recommender, forecast, sources, fixed)
        current_inputs, _ = inputs_from_values(forecast.keys, latest, sources, fixed)
        current = recommender.recommend(current_inputs)
    except ValueError as exc:
        return _failed(
            spec, horizon, now, RecommendationReason.INPUTS_UNAVAILABLE,
            f"{exc}: match spec.recommendation.inputs to the task's series (their groupBy labels)",
        )  # fmt: skip
    rec = predicted.recommendation
    changed = recommendation_changed(current, rec)
    reason = RecommendationReason.RECOMMENDED if rec.covered else RecommendationReason.OUTSIDE_COVERAGE
    message = (
        f"the load predicted in {horizon} needs {_describe(rec)}; today's load needs {_describe(current)}"
        + (" (a change)" if changed else "")
        + f" (library {library.name} {ref.version})"
    )
    status = {
        "library": library.name,
        "libraryVersion": ref.version,
        "horizon": horizon,
        "reason": reason,
        "message": message,
        "predicted": architecture_status(rec, predicted.inputs),
        "current": architecture_status(current, current_inputs),
        "changed": changed,
        "time": _iso(now),
    }
    families = recommendation_metrics(
        task=task, namespace=namespace, horizon=horizon, predicted=rec, current=current, changed=changed
    )
    warnings = [] if rec.covered else [f"capacity recommendation: {message}"]
    log.info("recommendation for %s/%s: %s", namespace, task, message)
    return RunRecommendation(status=status, families=families, warnings=warnings)
