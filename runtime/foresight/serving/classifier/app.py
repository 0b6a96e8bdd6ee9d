"""The classifier service as a FastAPI application: the service state, its routers, one error shape.

``create_app`` takes every dependency (backends, store, clock, metrics registry, environment) so
tests build isolated instances; ``run`` (in ``server.py``) is the only place that reads the process
environment. The routes themselves are in :mod:`.routes`, one router per concern; they find the
service through the :class:`~.routes.context.ClassifierState` kept on ``app.state.classifier``.

Every error response, the service's own and the framework's (404, 405, 422, an unexpected 500),
is ``{"error", "message", "request_id"}`` (plus ``detail`` where there is more to say), carries
the request id in ``X-Request-Id`` and is logged in one line with that id.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from foresight.contract.classifier import BackendConfig, ClassifierConfig

from .accounting import Ledger
from .backends.base import ClassifierBackend
from .drift import DriftMonitor
from .errors import ClassifierError, ConfigError, StoreError
from .flights import Flights
from .front import Front
from .routes import ROUTERS
from .routes.admin import render_admin_page
from .routes.context import ClassifierState, info_of
from .routing import RoutingTable
from .service import ClassifierService, Variant
from .store.base import ResultStore
from .telemetry import ClassifierMetrics

__all__ = ["ClassifierApp", "build_backend", "build_store", "create_app"]

log = logging.getLogger("foresight.serving.classifier")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "upload_too_large",
    415: "unsupported_media_type",
    422: "bad_request",
    429: "too_many_requests",
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


def build_backend(
    config: ClassifierConfig,
    environ: Mapping[str, str],
    backend: BackendConfig | None = None,
    prompt: str | None = None,
) -> ClassifierBackend[Any]:
    """The backend ``backend`` (default ``config.backend``) with ``prompt`` (default the service's,
    rendered); the API key is taken from ``environ``."""
    b = backend or config.backend
    if b.type == "onnx":
        from .backends.onnx import OnnxBackend

        assert b.onnx is not None  # guaranteed by BackendConfig's validator
        return OnnxBackend(b.onnx, category_keys=[c.key for c in config.categories])
    from .backends.dashscope import DashScopeBackend

    return DashScopeBackend(
        b.dashscope,
        api_key=environ.get(b.dashscope.api_key_env, ""),
        prompt=prompt or config.render_prompt(),
        categories=config.categories,
        fallback=config.fallback_category,
        pool_size=b.concurrency,
    )


def _variants(
    config: ClassifierConfig, environ: Mapping[str, str], given: Mapping[str, ClassifierBackend[Any]]
) -> list[Variant]:
    out = []
    for name, backend, prompt in config.served_variants():
        instance = given.get(name) or build_backend(config, environ, backend, prompt)
        out.append(Variant(name, instance, backend.price_per_call, backend.concurrency))
    return out


class ClassifierApp(FastAPI):
    """FastAPI with the front layer (:mod:`.front`) before everything, its error pages included.

    As a middleware the front layer would sit inside FastAPI's and Starlette's own layers, which
    a cached answer then crosses for nothing; here they run only for what the front layer passes on.
    """

    front: Front | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.front is not None and scope["type"] == "http":
            await self.front(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def framework(self, scope: Scope, receive: Receive, send: Send) -> None:
        """FastAPI itself (the routes, their middleware and error handlers)."""
        await super().__call__(scope, receive, send)


def create_app(
    config: ClassifierConfig,
    *,
    backend: ClassifierBackend[Any] | None = None,
    backends: Mapping[str, ClassifierBackend[Any]] | None = None,
    store: ResultStore | None = None,
    clock: Callable[[], float] | None = None,
    registry: CollectorRegistry | None = None,
    environ: Mapping[str, str] | None = None,
    multiprocess_dir: str | None = None,
) -> FastAPI:
    """The classifier FastAPI app. Missing dependencies are built from ``config`` and ``environ``
    (default: the process environment, read here once). ``backend`` replaces the control's backend,
    ``backends`` any variant's by name; ``multiprocess_dir``: the metrics directory shared by the
    worker processes (``PROMETHEUS_MULTIPROC_DIR``) when there are several."""
    env = dict(os.environ if environ is None else environ)
    token = _client_token(config, env)
    given = dict(backends or {})
    if backend is not None:
        given[config.served_variants()[0][0]] = backend
    store = store if store is not None else build_store(config, env)
    clock = clock or time.time
    metrics = ClassifierMetrics(registry if registry is not None else CollectorRegistry())
    variants = _variants(config, env, given)
    metrics.start([(v.name, v.backend.name) for v in variants])
    ledger = Ledger(
        store,
        metrics,
        prices={v.name: v.price for v in variants},
        backends={v.name: v.backend.name for v in variants},
        clock=clock,
        timezone=config.timezone,
        retention_days=config.cache.retention_days,
        flush_seconds=config.flush_seconds,
        start_thread=False,
    )
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    flights = Flights(store, shared=config.workers > 1 or config.cache.store == "redis", owner=owner)
    service = ClassifierService(
        config, variants=variants, store=store, ledger=ledger, flights=flights, clock=clock
    )
    names = [v.name for v in variants]
    routing = RoutingTable(
        names, config.routing.file, poll_seconds=config.routing.poll_seconds, metrics=metrics
    )
    drift = DriftMonitor(
        store, config.monitoring, categories=[c.key for c in config.categories], variants=names, clock=clock
    )
    if multiprocess_dir is None:
        metrics.registry.register(drift)
    app = ClassifierApp(
        title="Foresight image classifier",
        version="1",
        description="Classifies images into configured categories with an LLM (DashScope) or an ONNX model, "
        "per variant when an A/B experiment splits the traffic; results are cached by the SHA-256 of the "
        "uploaded bytes. Failures and low-confidence answers are never cached. Every error is "
        '`{"error", "message", "request_id"}`.',
        lifespan=_lifespan,
        # FastAPI's native OpenTelemetry looks the global providers up on every request (about a
        # third of a cached answer's time in the app); the service exports its own metrics.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    state = ClassifierState(
        config,
        service,
        routing,
        token,
        admin_page=render_admin_page(config, auth=token is not None),
        drift=drift,
        multiprocess_dir=multiprocess_dir,
    )
    app.state.classifier = state
    app.front = Front(app.framework, state)
    _install_routes(app)
    _document_categories(app, [c.key for c in config.categories])
    return app


def _install_routes(app: FastAPI) -> None:
    """The routers and the error handlers that give every failure the one error shape."""
    app.add_exception_handler(ClassifierError, _classifier_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _internal_error)
    for router in ROUTERS:
        app.include_router(router)


def _document_categories(app: FastAPI, keys: list[str]) -> None:
    """OpenAPI names this service's category keys as the only feedback labels (they are config)."""
    default = app.openapi

    def openapi() -> dict[str, Any]:
        fresh = app.openapi_schema is None
        schema = default()  # FastAPI keeps it in app.openapi_schema
        if fresh:
            schema["components"]["schemas"]["FeedbackRequest"]["properties"]["label"]["enum"] = keys
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _client_token(config: ClassifierConfig, env: Mapping[str, str]) -> str | None:
    """The token clients must send, when client auth is on."""
    if not config.auth.token_env:
        return None
    token = env.get(config.auth.token_env) or None
    if token is None:
        raise ConfigError(
            f"client auth is on but the environment variable {config.auth.token_env} is "
            "empty: set it (from the Secret) or remove auth.tokenEnv"
        )
    return token


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state: ClassifierState = app.state.classifier
    service = state.service
    try:
        removed = await anyio.to_thread.run_sync(service.purge_old)
        log.info(
            "classifier ready: variants=%s store=%s purged=%d old request-log entries",
            {v.name or "(one)": v.backend.name for v in service.variants.values()},
            state.config.cache.store,
            removed,
        )
    except StoreError as exc:
        log.error("could not purge the request log at start: %s", exc)
    service.ledger.start()
    state.routing.start()
    try:
        yield
    finally:
        await service.flights.aclose()
        state.routing.stop()
        await anyio.to_thread.run_sync(service.close)


def _error(
    request: Request, status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The one error response: the body with the request id (the front layer adds the
    ``X-Request-Id`` header to every response), logged in one line."""
    info = info_of(request)
    log.log(
        logging.WARNING if status >= 500 or status == 429 else logging.INFO,
        "request failed: request_id=%s %s %s status=%d error=%s variant=%s sha256=%s",
        info.request_id, request.method, request.url.path, status, body.get("error"), info.variant or "-",
        info.sha256 or "-",
    )  # fmt: skip
    return JSONResponse({**body, "request_id": info.request_id}, status_code=status, headers=headers)


async def _classifier_error(request: Request, exc: ClassifierError) -> JSONResponse:
    return _error(request, exc.status, exc.body(), exc.headers())


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    status = exc.status_code
    code = _HTTP_CODES.get(status, f"http_{status}")
    if status == 404:
        message = f"no such endpoint: {request.method} {request.url.path}; the API is described at /docs"
    elif status == 405:
        allow = (exc.headers or {}).get("Allow", "")
        message = f"{request.method} is not allowed on {request.url.path}"
        message += f": use {allow}" if allow else ""
    else:
        message = str(exc.detail)
    return _error(request, status, {"error": code, "message": message}, exc.headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in exc.errors()
    ]
    where = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[:5])
    return _error(
        request,
        422,
        {
            "error": "bad_request",
            "message": f"the request does not match the API: fix {where} (see /docs)",
            "detail": {"errors": jsonable_encoder(errors)},
        },
    )


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error: request_id=%s", info_of(request).request_id, exc_info=exc)
    return _error(
        request,
        500,
        {
            "error": "internal_error",
            "message": "the service failed unexpectedly; the request id is in its log, please report it",
        },
    )
