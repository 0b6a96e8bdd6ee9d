"""``GET /api/v1/stats/today``: today's requests, cache efficiency, cost, feedback, per variant and in total.

Every number is a day counter of the store, written by the ledger from the same events as
``/metrics`` (definitions: :mod:`..accounting`); this module only shapes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from ..accounting import DayStats
from ..schemas import AUTH_ERROR, StatsResponse
from ..schemas import error_response as err
from .context import API, ClassifierState, require_auth, state_of

__all__ = ["router", "stats_body"]

router = APIRouter(dependencies=[Depends(require_auth)])

_COUNTS = (
    "requests",
    "classify_requests",
    "check_cache_requests",
    "cache_hits",
    "cache_misses",
    "check_cache_misses",
    "coalesced",
    "uncertain_answers",
    "rejected",
    "errors",
    "llm_calls",
    "llm_calls_billed",
    "llm_calls_saved",
    "feedback_correct",
    "feedback_incorrect",
)


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _variant_stats(counts: Mapping[str, float], *, price: float, backend: str) -> dict[str, Any]:
    c = {name: round(counts.get(name, 0)) for name in _COUNTS}
    feedback = c["feedback_correct"] + c["feedback_incorrect"]
    return {
        **c,
        "llm_failures": round(counts.get("failures", 0)),
        "hit_rate": _ratio(c["cache_hits"], c["cache_hits"] + c["cache_misses"]),
        "price_per_call": price,
        "estimated_cost_spent": round(counts.get("cost_spent", 0.0), 6),
        "estimated_cost_saved": round(counts.get("cost_saved", 0.0), 6),
        "categories": {
            name.partition(":")[2]: round(n)
            for name, n in sorted(counts.items())
            if name.startswith("category:")
        },
        "accuracy": _ratio(c["feedback_correct"], feedback),
        "backend": backend,
    }


def stats_body(state: ClassifierState, s: DayStats) -> dict[str, Any]:
    """``/stats/today``'s body from one day's counters."""
    service = state.service
    named = [v for v in service.variants.values() if v.name]
    variants = {
        v.name: _variant_stats(s.variants.get(v.name, {}), price=v.price, backend=v.backend.name)
        for v in named
    }
    control = service.control
    return {
        **_variant_stats(s.totals, price=control.price, backend=control.backend.name),
        "day": s.day,
        "timezone": state.config.timezone,
        "unique_clients": s.unique_clients,
        "variants": variants,
    }


@router.get(
    f"{API}/stats/today",
    response_model=StatsResponse,
    summary="Today's requests, cache efficiency, cost, feedback, per variant",
    responses={**AUTH_ERROR, 503: err("The statistics store is unavailable.")},
)
async def stats_today(request: Request) -> Response:
    state = state_of(request)
    s = await anyio.to_thread.run_sync(state.service.day_stats)
    return JSONResponse(stats_body(state, s))
