"""``POST /api/v1/classify`` (an upload, cached by SHA-256) and ``POST /api/v1/classify/check-cache``."""

from __future__ import annotations

import logging
import time

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from ..errors import ClassifierError, ImageRejected
from ..images import check_image
from ..schemas import AUTH_ERROR, CLASSIFY_BODY, CheckCacheRequest, CheckCacheResponse, ClassifyResponse
from ..schemas import error_response as err
from ..service import sha256_hex
from ..uploads import read_upload
from .context import API, ClassifierState, record, request_id, require_auth, result_body, state_of

__all__ = ["router"]

log = logging.getLogger("foresight.serving.classifier")

router = APIRouter(dependencies=[Depends(require_auth)])


@router.post(
    f"{API}/classify",
    response_model=ClassifyResponse,
    openapi_extra=CLASSIFY_BODY,
    summary="Classify an image (cached by SHA-256)",
    responses={
        **AUTH_ERROR,
        413: err("Upload or pixel count over the limit."),
        415: err("Not a supported image (checked by content)."),
        422: err("Malformed body."),
        502: err("The backend failed after retries; nothing was cached, retry later."),
        503: err("The cache store is unavailable."),
    },
)
async def classify(request: Request) -> Response:
    state = state_of(request)
    start = time.perf_counter()
    rid = request_id(request)
    sha: str | None = None
    llm_called = False
    service = state.service
    try:
        data = await _upload(request, state)
        sha = sha256_hex(data)
        # Fast path: these exact bytes were checked and classified before.
        hit = service.lru.get(sha)
        cached = hit is not None
        if hit is None:
            limits = state.config.limits
            checked = await anyio.to_thread.run_sync(
                lambda: check_image(data, max_bytes=limits.max_upload_bytes, max_pixels=limits.max_pixels)
            )
            # Known before the call, so a failed backend call is still counted as a call.
            llm_called = service.lookup(sha) is None
            hit, cached = await anyio.to_thread.run_sync(
                service.classify, checked, sha, limiter=state.backend_limiter()
            )
            llm_called = llm_called and not cached
        assert hit is not None  # classify() returns a result or raises
    except ClassifierError as exc:
        record(request, "classify", start, exc.status, sha256=sha, llm_called=llm_called,
               llm_failed=exc.status == 502)  # fmt: skip
        log.warning(
            "classify failed: request_id=%s status=%d error=%s sha256=%s", rid, exc.status, exc.code, sha
        )
        raise
    metrics = service.metrics
    (metrics.cache_hits if cached else metrics.cache_misses).labels("classify").inc()
    metrics.classifications.labels(hit.category).inc()
    latency = record(request, "classify", start, 200, sha256=sha, category=hit.category, cached=cached,
                     llm_called=llm_called)  # fmt: skip
    log.info("classified request_id=%s sha256=%s category=%s cached=%s latency_ms=%.1f",
             rid, sha, hit.category, cached, latency)  # fmt: skip
    return JSONResponse(
        {**result_body(state.config, hit), "cached": cached, "request_id": rid, "latency_ms": latency},
        headers={"X-Request-Id": rid},
    )


async def _upload(request: Request, state: ClassifierState) -> bytes:
    limit = state.config.limits.max_upload_bytes
    data = await read_upload(request, limit)
    if len(data) > limit:
        raise ImageRejected(
            f"upload is {len(data)} bytes, the limit is {limit}",
            status=413,
            code="upload_too_large",
            size=len(data),
            limit=limit,
        )
    return data


@router.post(
    f"{API}/classify/check-cache",
    response_model=CheckCacheResponse,
    summary="Look a result up by SHA-256 before uploading",
    responses={**AUTH_ERROR, 503: err("The cache store is unavailable.")},
)
async def check_cache(body: CheckCacheRequest, request: Request) -> Response:
    state = state_of(request)
    service = state.service
    start = time.perf_counter()
    rid = request_id(request)
    sha = body.sha256.lower()
    hit = service.lru.get(sha)
    if hit is None:
        hit = await anyio.to_thread.run_sync(service.lookup, sha)
    if hit is None:
        service.metrics.cache_misses.labels("check-cache").inc()
        record(request, "check-cache", start, 200, sha256=sha)
        return JSONResponse({"hit": False, "result": None, "request_id": rid})
    service.metrics.cache_hits.labels("check-cache").inc()
    service.metrics.classifications.labels(hit.category).inc()
    record(request, "check-cache", start, 200, sha256=sha, category=hit.category, cached=True)
    return JSONResponse({"hit": True, "result": result_body(state.config, hit), "request_id": rid})
