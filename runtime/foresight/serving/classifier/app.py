"""The HTTP layer of the classifier service (FastAPI): routes, auth, upload limits, metrics, admin page.

``create_app`` takes every dependency (backend, store, clock, metrics registry, environment) so
tests build isolated instances; ``run`` (in ``server.py``) is the only place that reads the process
environment.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import UploadFile
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from foresight.contract.classifier import ClassifierConfig

from .backends.base import ClassifierBackend
from .errors import ClassifierError, ConfigError, ImageRejected, StoreError
from .images import check_image
from .metrics import ClassifierMetrics
from .service import ClassifierService, sha256_hex
from .store.base import CachedResult, RequestRecord, ResultStore

__all__ = ["build_backend", "build_store", "create_app"]

log = logging.getLogger("foresight.serving.classifier")

API = "/api/v1"
_ENDPOINTS = {
    f"{API}/classify": "classify",
    f"{API}/classify/check-cache": "check-cache",
    f"{API}/stats/today": "stats",
    f"{API}/health": "health",
    "/metrics": "metrics",
    "/": "admin",
}


class ClassifyResult(BaseModel):
    category: str = Field(description="The category key.")
    label_zh: str
    label_en: str
    confidence: float = Field(ge=0, le=1)
    sha256: str


class ClassifyResponse(ClassifyResult):
    cached: bool = Field(description="Answered from the cache (no backend call).")
    request_id: str
    latency_ms: float


class ImageBase64Request(BaseModel):
    image_base64: str = Field(
        description="The image bytes, base64 (a `data:image/...;base64,` prefix is allowed)."
    )


class CheckCacheRequest(BaseModel):
    sha256: str = Field(
        pattern=r"^[0-9a-fA-F]{64}$", description="SHA-256 (hex) of the exact bytes the client would upload."
    )


class CheckCacheResponse(BaseModel):
    hit: bool
    result: ClassifyResult | None = None
    request_id: str


class StatsResponse(BaseModel):
    day: str
    timezone: str
    requests: int
    classify_requests: int
    check_cache_requests: int
    cache_hits: int
    cache_misses: int
    hit_rate: float | None = Field(description="cache_hits / (cache_hits + cache_misses); null before any.")
    errors: int
    unique_clients: int
    categories: dict[str, int]
    llm_calls: int = Field(description="Backend calls made (failed ones included).")
    llm_failures: int
    llm_calls_saved: int = Field(description="Requests answered from the cache instead of the backend.")
    price_per_call: float
    estimated_cost_saved: float
    estimated_cost_spent: float
    backend: str


class HealthResponse(BaseModel):
    status: str
    backend: str
    store: str


class ErrorBody(BaseModel):
    error: str
    message: str
    request_id: str | None = None
    detail: dict[str, Any] | None = None


def _err(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


_AUTH_ERR: dict[int | str, dict[str, Any]] = {
    401: _err("Missing or wrong bearer token (only when client auth is configured).")
}
_CLASSIFY_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
            "application/json": {"schema": ImageBase64Request.model_json_schema()},
        },
    }
}


def build_store(config: ClassifierConfig, environ: Mapping[str, str]) -> ResultStore:
    """The store named by ``config.cache`` (secrets taken from ``environ``)."""
    cache = config.cache
    if cache.store == "redis":
        from .store.redis import RedisStore

        password = environ.get(cache.redis_password_env) if cache.redis_password_env else None
        return RedisStore(
            cache.redis_url or "",
            password=password,
            prefix=cache.redis_prefix,
            retention_days=cache.retention_days,
        )
    from .store.sqlite import SqliteStore

    return SqliteStore(cache.sqlite_path)


def build_backend(config: ClassifierConfig, environ: Mapping[str, str]) -> ClassifierBackend:
    """The backend named by ``config.backend`` (the API key taken from ``environ``)."""
    b = config.backend
    if b.type == "onnx":
        from .backends.onnx import OnnxBackend

        assert b.onnx is not None  # guaranteed by BackendConfig's validator
        return OnnxBackend(b.onnx, category_keys=[c.key for c in config.categories])
    from .backends.dashscope import DashScopeBackend

    return DashScopeBackend(
        b.dashscope,
        api_key=environ.get(b.dashscope.api_key_env, ""),
        prompt=config.render_prompt(),
        categories=config.categories,
        fallback=config.fallback_category,
        pool_size=b.concurrency,
    )


class _MetricsMiddleware:
    """Counts every request by endpoint and status and times it (pure ASGI: cheap on the hot path)."""

    def __init__(self, app: ASGIApp, metrics: ClassifierMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        endpoint = _ENDPOINTS.get(scope["path"], "other")  # bounded label values
        status = 500
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.requests.labels(endpoint, str(status)).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - start)


def create_app(
    config: ClassifierConfig,
    *,
    backend: ClassifierBackend | None = None,
    store: ResultStore | None = None,
    clock: Callable[[], float] | None = None,
    registry: CollectorRegistry | None = None,
    environ: Mapping[str, str] | None = None,
) -> FastAPI:
    """The classifier FastAPI app. Missing dependencies are built from ``config`` and ``environ``
    (default: the process environment, read here once)."""
    env = dict(os.environ if environ is None else environ)
    token: str | None = None
    if config.auth.token_env:
        token = env.get(config.auth.token_env) or None
        if token is None:
            raise ConfigError(
                f"client auth is on but the environment variable {config.auth.token_env} is "
                "empty: set it (from the Secret) or remove auth.tokenEnv"
            )
    metrics = ClassifierMetrics(registry if registry is not None else CollectorRegistry())
    service = ClassifierService(
        config,
        backend=backend if backend is not None else build_backend(config, env),
        store=store if store is not None else build_store(config, env),
        metrics=metrics,
        clock=clock or time.time,
    )
    limiter: list[anyio.CapacityLimiter] = []  # created on first use: it needs the running event loop

    def backend_limiter() -> anyio.CapacityLimiter:
        if not limiter:
            limiter.append(anyio.CapacityLimiter(config.backend.concurrency))
        return limiter[0]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            removed = await anyio.to_thread.run_sync(service.purge_old)
            log.info(
                "classifier ready: backend=%s store=%s purged=%d old request-log entries",
                service.backend.name,
                config.cache.store,
                removed,
            )
        except StoreError as exc:
            log.error("could not purge the request log at start: %s", exc)
        yield
        await anyio.to_thread.run_sync(service.close)

    app = FastAPI(
        title="Foresight image classifier",
        version="1",
        description="Classifies images into configured categories with an LLM (DashScope) or an ONNX model; "
        "results are cached by the SHA-256 of the uploaded bytes. Failures are never cached.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.add_middleware(_MetricsMiddleware, metrics=metrics)

    def request_id(request: Request) -> str:
        rid: str | None = getattr(request.state, "request_id", None)
        if rid is None:
            rid = uuid.uuid4().hex
            request.state.request_id = rid
        return rid

    def client_id(request: Request) -> str:
        cid = request.headers.get("x-client-id")
        if cid:
            return cid[:128]
        return request.client.host if request.client else "unknown"

    async def require_auth(request: Request) -> None:
        if token is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise _Unauthorized("send `Authorization: Bearer <token>` with the service's client token")

    @app.exception_handler(ClassifierError)
    async def _classifier_error(request: Request, exc: ClassifierError) -> JSONResponse:
        return JSONResponse(
            {**exc.body(), "request_id": request_id(request)},
            status_code=exc.status,
            headers={"WWW-Authenticate": "Bearer"} if exc.status == 401 else None,
        )

    def result_body(r: CachedResult) -> dict[str, Any]:
        try:
            cat = config.category(r.category)
            zh, en = cat.zh, cat.en
        except KeyError:  # cached under an older category set
            zh = en = r.category
        return {
            "category": r.category,
            "label_zh": zh,
            "label_en": en,
            "confidence": r.confidence,
            "sha256": r.sha256,
        }

    async def read_upload(request: Request) -> bytes:
        limit = config.limits.max_upload_bytes
        # base64 inflates by 4/3; multipart adds headers. Anything beyond this is refused unread.
        body_limit = limit * 4 // 3 + 64 * 1024
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > body_limit:
            raise ImageRejected(
                f"request body is {declared} bytes, the upload limit is {limit}",
                status=413,
                code="upload_too_large",
                limit=limit,
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > body_limit:
                raise ImageRejected(
                    f"request body exceeds the upload limit of {limit} bytes",
                    status=413,
                    code="upload_too_large",
                    limit=limit,
                )
            chunks.append(chunk)
        body = b"".join(chunks)
        ctype = request.headers.get("content-type", "").lower()
        if ctype.startswith("multipart/form-data"):

            async def replay() -> Message:
                return {"type": "http.request", "body": body, "more_body": False}

            try:
                form = await Request(request.scope, replay).form(max_files=1, max_fields=8)
            except Exception as exc:  # malformed multipart: starlette raises several types
                raise ImageRejected(
                    f"malformed multipart body: {exc}", status=422, code="bad_request"
                ) from exc
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise ImageRejected(
                    "multipart upload needs the image in a form field named `file`",
                    status=422,
                    code="bad_request",
                )
            data = await upload.read()
            await form.close()
            return data
        if ctype.startswith("application/json"):
            try:
                payload = ImageBase64Request.model_validate_json(body)
            except ValidationError as exc:
                raise ImageRejected(
                    'JSON body must be {"image_base64": "..."}',
                    status=422,
                    code="bad_request",
                    errors=json.loads(exc.json(include_url=False, include_input=False)),
                ) from exc
            text = payload.image_base64
            if text.startswith("data:"):
                text = text.partition(",")[2]
            try:
                return base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ImageRejected(
                    "image_base64 is not valid base64", status=422, code="bad_request"
                ) from exc
        raise ImageRejected(
            'send multipart/form-data with a `file` field, or JSON {"image_base64": ...}',
            status=415,
            code="unsupported_media_type",
        )

    def record(request: Request, endpoint: str, start: float, status: int, **fields: Any) -> float:
        latency_ms = round((time.perf_counter() - start) * 1000, 3)
        service.record(
            RequestRecord(
                ts=service.clock(),
                day=service.today(),
                endpoint=endpoint,
                client_id=client_id(request),
                status=status,
                latency_ms=latency_ms,
                **fields,
            )
        )
        return latency_ms

    @app.post(
        f"{API}/classify",
        response_model=ClassifyResponse,
        dependencies=[Depends(require_auth)],
        openapi_extra=_CLASSIFY_BODY,
        summary="Classify an image (cached by SHA-256)",
        responses={
            **_AUTH_ERR,
            413: _err("Upload or pixel count over the limit."),
            415: _err("Not a supported image (checked by content)."),
            422: _err("Malformed body."),
            502: _err("The backend failed after retries; nothing was cached, retry later."),
            503: _err("The cache store is unavailable."),
        },
    )
    async def classify(request: Request) -> Response:
        start = time.perf_counter()
        rid = request_id(request)
        sha: str | None = None
        llm_called = False
        try:
            data = await read_upload(request)
            if len(data) > config.limits.max_upload_bytes:
                raise ImageRejected(
                    f"upload is {len(data)} bytes, the limit is {config.limits.max_upload_bytes}",
                    status=413,
                    code="upload_too_large",
                    size=len(data),
                    limit=config.limits.max_upload_bytes,
                )
            sha = sha256_hex(data)
            # Fast path: these exact bytes were checked and classified before.
            hit = service.lru.get(sha)
            cached = hit is not None
            if hit is None:
                checked = await anyio.to_thread.run_sync(
                    lambda: check_image(
                        data, max_bytes=config.limits.max_upload_bytes, max_pixels=config.limits.max_pixels
                    )
                )
                llm_called = service.lookup(sha) is None
                hit, cached = await anyio.to_thread.run_sync(
                    service.classify, checked, sha, limiter=backend_limiter()
                )
                llm_called = llm_called and not cached
            assert hit is not None  # classify() returns a result or raises
        except ClassifierError as exc:
            record(
                request,
                "classify",
                start,
                exc.status,
                sha256=sha,
                llm_called=llm_called,
                llm_failed=exc.status == 502,
            )
            log.warning(
                "classify failed: request_id=%s status=%d error=%s sha256=%s", rid, exc.status, exc.code, sha
            )
            raise
        (service.metrics.cache_hits if cached else service.metrics.cache_misses).labels("classify").inc()
        service.metrics.classifications.labels(hit.category).inc()
        latency = record(
            request,
            "classify",
            start,
            200,
            sha256=sha,
            category=hit.category,
            cached=cached,
            llm_called=llm_called,
        )
        log.info(
            "classified request_id=%s sha256=%s category=%s cached=%s latency_ms=%.1f",
            rid,
            sha,
            hit.category,
            cached,
            latency,
        )
        return JSONResponse(
            {**result_body(hit), "cached": cached, "request_id": rid, "latency_ms": latency},
            headers={"X-Request-Id": rid},
        )

    @app.post(
        f"{API}/classify/check-cache",
        response_model=CheckCacheResponse,
        dependencies=[Depends(require_auth)],
        summary="Look a result up by SHA-256 before uploading",
        responses={**_AUTH_ERR, 503: _err("The cache store is unavailable.")},
    )
    async def check_cache(body: CheckCacheRequest, request: Request) -> Response:
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
        return JSONResponse({"hit": True, "result": result_body(hit), "request_id": rid})

    @app.get(
        f"{API}/stats/today",
        response_model=StatsResponse,
        dependencies=[Depends(require_auth)],
        summary="Today's requests, cache efficiency, clients, categories and cost saved",
        responses={**_AUTH_ERR, 503: _err("The statistics store is unavailable.")},
    )
    async def stats_today() -> Response:
        s = await anyio.to_thread.run_sync(service.day_stats)
        lookups = s.cache_hits + s.cache_misses
        price = config.backend.price_per_call
        return JSONResponse(
            {
                **{k: v for k, v in s.__dict__.items()},
                "timezone": config.timezone,
                "hit_rate": round(s.cache_hits / lookups, 4) if lookups else None,
                "llm_calls_saved": s.cache_hits,
                "price_per_call": price,
                "estimated_cost_saved": round(s.cache_hits * price, 6),
                "estimated_cost_spent": round(s.llm_calls * price, 6),
                "backend": service.backend.name,
            }
        )

    @app.get(
        f"{API}/health",
        response_model=HealthResponse,
        summary="Liveness and store reachability",
        responses={503: _err("The store is unreachable.")},
    )
    async def health() -> Response:
        await anyio.to_thread.run_sync(service.store.ping)
        return JSONResponse({"status": "ok", "backend": service.backend.name, "store": config.cache.store})

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    page = _admin_page(config, auth=token is not None)

    @app.get("/", include_in_schema=False)
    async def admin() -> HTMLResponse:
        return HTMLResponse(page)

    return app


class _Unauthorized(ClassifierError):
    status = 401
    code = "unauthorized"


def _admin_page(config: ClassifierConfig, *, auth: bool) -> str:
    template = resources.files(__package__).joinpath("admin.html").read_text(encoding="utf-8")
    data = {
        "categories": [c.model_dump() for c in config.categories],
        "prompt": config.render_prompt(),
        "backend": config.backend.type,
        "auth": auth,
    }
    # "</" would end the <script> element early.
    return template.replace("__CONFIG_JSON__", json.dumps(data, ensure_ascii=False).replace("</", "<\\/"))
