"""A ForecastTask's capacity recommendation (``spec.recommendation``) in status and events (pure).

Each run with ``spec.recommendation`` reports the architecture its predicted load needs next to the
one today's load needs (the runtime's :mod:`foresight.forecast.recommendation`, carried in the run's
termination message). :func:`recommendation_status` checks it against the API model before it
becomes ``status.recommendation``; :func:`recommendation_events` says what is worth an event: the
predicted load needing another architecture or node count than today's (once, when that starts or
the recommendation moves), and a recommendation that could not be made (once, when that starts).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from foresight.api.recommendation import RecommendationReason, RecommendationStatus
from pydantic import ValidationError

__all__ = ["RECOMMENDATION_CHANGED", "recommendation_events", "recommendation_status"]

log = logging.getLogger(__name__)
Obj = dict[str, Any]
RECOMMENDATION_CHANGED = "RecommendationChanged"
"""Event reason: the predicted load needs another architecture or node count than today's."""
_ANSWERED = (RecommendationReason.RECOMMENDED, RecommendationReason.OUTSIDE_COVERAGE)


def recommendation_status(doc: Mapping[str, Any] | None) -> Obj | None:
    """The run's recommendation as ``status.recommendation``; ``None`` when absent or not the API's shape."""
    if not doc:
        return None
    try:
        return RecommendationStatus.model_validate(dict(doc)).to_wire()
    except ValidationError as exc:
        log.warning("a run's recommendation does not match the API and is left out of status: %s", exc)
        return None


def _sized(rec: Mapping[str, Any]) -> tuple[Any, Any]:
    predicted = rec.get("predicted") or {}
    return predicted.get("architecture"), predicted.get("nodes")


def recommendation_events(
    old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
) -> list[tuple[str, str, str]]:
    """``(type, reason, message)`` of the events the change from ``old`` to ``new`` deserves."""
    if not new:
        return []
    old = old or {}
    reason = new.get("reason")
    if reason not in _ANSWERED:
        if old.get("reason") != reason:
            return [("Warning", str(reason), f"no capacity recommendation: {new.get('message', '')}")]
        return []
    if new.get("changed") and (not old.get("changed") or _sized(old) != _sized(new)):
        return [("Normal", RECOMMENDATION_CHANGED, str(new.get("message", "")))]
    return []
