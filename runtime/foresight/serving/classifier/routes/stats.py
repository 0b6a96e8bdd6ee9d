"""``GET /api/v1/stats/today``: today's requests, cache efficiency, clients, categories and cost saved."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from ..schemas import AUTH_ERROR, StatsResponse
from ..schemas import error_response as err
from .context import API, require_auth, state_of

__all__ = ["router"]

router = APIRouter(dependencies=[Depends(require_auth)])


@router.get(
    f"{API}/stats/today",
    response_model=StatsResponse,
    summary="Today's requests, cache efficiency, clients, categories and cost saved",
    responses={**AUTH_ERROR, 503: err("The statistics store is unavailable.")},
)
async def stats_today(request: Request) -> Response:
    state = state_of(request)
    s = await anyio.to_thread.run_sync(state.service.day_stats)
    lookups = s.cache_hits + s.cache_misses
    price = state.config.backend.price_per_call
    return JSONResponse(
        {
            **{k: v for k, v in s.__dict__.items()},
            "timezone": state.config.timezone,
            "hit_rate": round(s.cache_hits / lookups, 4) if lookups else None,
            "llm_calls_saved": s.cache_hits,
            "price_per_call": price,
            "estimated_cost_saved": round(s.cache_hits * price, 6),
            "estimated_cost_spent": round(s.llm_calls * price, 6),
            "backend": state.service.backend.name,
        }
    )
