"""A ForecastTask's capacity recommendation in its status and events (spec.recommendation, issue 15)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from foresight.api.forecasttask import ForecastTaskSpec
from foresight.contract.forecast import ForecastRunResult
from foresight_operator.handlers.forecasttask.recommendation import (
    recommendation_events,
    recommendation_status,
)
from foresight_operator.handlers.forecasttask.results import Harvest
from foresight_operator.handlers.forecasttask.status import task_status
from foresight_operator.schedule import Outcome, Plan

T0 = datetime(2026, 3, 1, 6, 15, tzinfo=UTC)
SPEC = ForecastTaskSpec.model_validate(
    {
        "source": {"query": "db_load", "step": "1h", "groupBy": ["signal"]},
        "recommendation": {"library": "postgresql-oltp", "inputs": {"qps": {"series": {"signal": "qps"}}}},
    }
)


def rec(predicted: tuple[str, int], current: tuple[str, int], **extra: Any) -> dict[str, Any]:
    def arch(a: tuple[str, int]) -> dict[str, Any]:
        return {"covered": True, "architecture": a[0], "nodes": a[1], "cases": ["pg-0001", "pg-0002"]}

    return {
        "library": "postgresql-oltp", "libraryVersion": "2026.12", "horizon": "24h", "reason": "Recommended",
        "message": f"the load predicted in 24h needs {predicted[0]} with {predicted[1]} nodes",
        "predicted": arch(predicted), "current": arch(current), "changed": predicted != current,
        "time": "2026-03-01T06:15:10Z", **extra,
    }  # fmt: skip


def harvest(recommendation: dict[str, Any] | None) -> Harvest:
    doc = {"phase": "Ready", "reason": "ForecastsWritten", "message": "ok", "recommendation": recommendation}
    result = ForecastRunResult.model_validate(doc)
    return Harvest("q-predict-x", "predict", T0, 1, Outcome.SUCCEEDED, "ForecastsWritten", "ok", T0, result)


def test_the_runs_recommendation_becomes_status_in_the_apis_shape() -> None:
    ran = harvest(rec(("distributed", 8), ("primary_standby", 2)))
    status = task_status(
        {}, spec=SPEC, generation=1, now=T0, harvests=[ran], active=None,
        plan=Plan(None, T0 + timedelta(minutes=15), 0), degraded_after=3,
    )  # fmt: skip
    got = status["recommendation"]
    assert (got["predicted"]["architecture"], got["predicted"]["nodes"], got["changed"]) == (
        "distributed",
        8,
        True,
    )
    assert got["predicted"]["cases"] == ["pg-0001", "pg-0002"] and got["libraryVersion"] == "2026.12"
    # A document that is not the API's shape is left out, never written half-valid.
    assert recommendation_status({"library": "x", "reason": "NotAReason"}) is None
    assert recommendation_status(None) is None


def test_an_event_when_the_predicted_load_needs_a_change_not_on_every_run() -> None:
    same = rec(("primary_standby", 2), ("primary_standby", 2))
    change = rec(("distributed", 8), ("primary_standby", 2))
    assert recommendation_events(None, same) == []
    events = recommendation_events(same, change)
    assert events == [("Normal", "RecommendationChanged", change["message"])]
    assert recommendation_events(change, change) == []  # the same answer again: no new event
    moved = rec(("distributed", 10), ("primary_standby", 2))
    assert [e[1] for e in recommendation_events(change, moved)] == ["RecommendationChanged"]


def test_a_recommendation_that_could_not_be_made_is_a_warning_once() -> None:
    missing = {
        "library": "postgresql-oltp",
        "reason": "LibraryNotActive",
        "message": "library has no active version",
    }
    assert recommendation_events(None, missing) == [
        ("Warning", "LibraryNotActive", "no capacity recommendation: library has no active version")
    ]
    assert recommendation_events(missing, missing) == []
