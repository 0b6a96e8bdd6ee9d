"""``POST /api/v1/classify`` (an upload, cached by SHA-256 per variant) and ``.../classify/check-cache``.

A cached answer is usually sent by the front layer before these routes run (:mod:`..front`); they
answer everything else: the first request for an image, a miss in the process's LRU, every body
that is malformed or refused, with the same response bodies.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ..accounting import Outcome
from ..errors import ClassifierError, ImageRejected
from ..render import check_cache_body, classify_body
from ..schemas import (
    AUTH_ERROR,
    CLASSIFY_BODY,
    CheckCacheRequest,
    CheckCacheResponse,
    ClassifyResponse,
)
from ..schemas import error_response as err
from ..service import sha256_hex
from ..store.base import cache_key
from ..uploads import read_upload
from .context import API, ClassifierState, info_of, require_auth, state_of

__all__ = ["router"]

log = logging.getLogger("foresight.serving.classifier")

router = APIRouter(dependencies=[Depends(require_auth)])

UPSTREAM_ERRORS: dict[int | str, dict[str, Any]] = {
    429: err("The backend kept throttling (its 429) through the retries: come back after Retry-After."),
    502: err(
        "The backend failed after its retries (`upstream_error`), or the request's deadline ran out "
        "(`upstream_timeout`); nothing was cached, retry later."
    ),
    503: err(
        "The cache store is unavailable (`store_unavailable`), or the backend kept answering 503 "
        "(`upstream_unavailable`, with Retry-After)."
    ),
}


@router.post(
    f"{API}/classify",
    response_model=ClassifyResponse,
    openapi_extra=CLASSIFY_BODY,
    summary="Classify an image (cached by SHA-256, per variant)",
    responses={
        **AUTH_ERROR,
        413: err("Upload or pixel count over the limit."),
        415: err("Not a supported image (checked by content), or a corrupt or truncated one."),
        422: err("Malformed body."),
        **UPSTREAM_ERRORS,
    },
)
async def classify(request: Request) -> Response:
    state = state_of(request)
    info = info_of(request)
    service = state.service
    variant = service.variant(info.variant)
    try:
        data = await _upload(request, state)
        info.sha256 = sha = sha256_hex(data)
        info.key = cache_key(variant.name, sha)
        served = await service.classify(
            variant, data, sha, deadline=info.start + state.config.deadline_seconds
        )
    except ClassifierError as exc:
        # The error handler logs it, once, with the request id, variant and hash.
        info.outcome, info.shared = exc.outcome, exc.shared
        raise
    info.category, info.shared = served.category, served.shared
    info.outcome = Outcome.HIT if served.cached else Outcome.MISS if served.certain else Outcome.UNCERTAIN
    latency = (time.monotonic() - info.start) * 1000
    log.info(
        "classified request_id=%s variant=%s sha256=%s category=%s outcome=%s latency_ms=%.1f",
        info.request_id, info.variant, sha, served.category, info.outcome, latency,
    )  # fmt: skip
    body = classify_body(
        served.fields,
        cached=served.cached,
        low_confidence=not served.certain,
        variant=info.variant,
        request_id=info.request_id,
        latency_ms=latency,
    )
    return Response(body, media_type="application/json")


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
    responses={
        **AUTH_ERROR,
        422: err("Malformed body (`sha256` must be 64 hex digits)."),
        503: err("The cache store is unavailable."),
    },
)
async def check_cache(body: CheckCacheRequest, request: Request) -> Response:
    state = state_of(request)
    info = info_of(request)
    service = state.service
    variant = service.variant(info.variant)
    info.sha256 = sha = body.sha256.lower()
    info.key = key = cache_key(variant.name, sha)
    try:
        hit = service.lru.get(key) or await anyio.to_thread.run_sync(service.lookup, key)
    except ClassifierError as exc:
        info.outcome = exc.outcome
        raise
    if hit is None:
        info.outcome = Outcome.NOT_FOUND
        return Response(
            check_cache_body(None, variant=info.variant, request_id=info.request_id),
            media_type="application/json",
        )
    info.category, info.outcome = hit.result.category, Outcome.HIT
    return Response(
        check_cache_body(hit.fragment, variant=info.variant, request_id=info.request_id),
        media_type="application/json",
    )
