"""``GET /api/v1/health`` (liveness and store reachability), ``GET /api/v1/routing`` and ``/metrics``."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from ..schemas import HealthResponse, RoutingResponse
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


@router.get(
    f"{API}/routing",
    response_model=RoutingResponse,
    summary="The variants this pod serves and the traffic split it applies",
)
async def routing(request: Request) -> Response:
    state = state_of(request)
    split = state.routing.split.describe()
    return JSONResponse({"variants": state.routing.variants, **split})


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(request: Request) -> Response:
    state = state_of(request)
    service = state.service
    # The ledger's pending events first: /metrics and /stats/today then count the same requests.
    await anyio.to_thread.run_sync(service.ledger.flush)
    await anyio.to_thread.run_sync(state.drift.refresh_if_stale)
    registry = service.ledger.metrics.registry
    if state.multiprocess_dir is not None:
        from prometheus_client import multiprocess

        # Several workers: every process's counters, added up from their files, and the drift.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=state.multiprocess_dir)
        registry.register(state.drift)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
