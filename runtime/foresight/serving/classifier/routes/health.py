"""``GET /api/v1/health`` (liveness and store reachability) and the service's own ``/metrics``."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..schemas import HealthResponse
from ..schemas import error_response as err
from .context import API, state_of

__all__ = ["router"]

router = APIRouter()


@router.get(
    f"{API}/health",
    response_model=HealthResponse,
    summary="Liveness and store reachability",
    responses={503: err("The store is unreachable.")},
)
async def health(request: Request) -> Response:
    state = state_of(request)
    await anyio.to_thread.run_sync(state.service.store.ping)
    return JSONResponse(
        {"status": "ok", "backend": state.service.backend.name, "store": state.config.cache.store}
    )


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(request: Request) -> Response:
    registry = state_of(request).service.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
