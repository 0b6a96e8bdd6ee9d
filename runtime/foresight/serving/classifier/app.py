"""The classifier service as a FastAPI application: the service state, its routers, request metrics.

``create_app`` takes every dependency (backend, store, clock, metrics registry, environment) so
tests build isolated instances; ``run`` (in ``server.py``) is the only place that reads the process
environment. The routes themselves are in :mod:`.routes`, one router per concern; they find the
service through the :class:`~.routes.context.ClassifierState` kept on ``app.state.classifier``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from foresight.contract.classifier import ClassifierConfig

from .backends.base import ClassifierBackend
from .errors import ClassifierError, ConfigError, StoreError
from .routes import ROUTERS
from .routes.admin import render_admin_page
from .routes.context import API, ClassifierState, request_id
from .service import ClassifierService
from .store.base import ResultStore
from .telemetry import ClassifierMetrics

__all__ = ["build_backend", "build_store", "create_app"]

log = logging.getLogger("foresight.serving.classifier")

ENDPOINTS = {
    f"{API}/classify": "classify",
    f"{API}/classify/check-cache": "check-cache",
    f"{API}/stats/today": "stats",
    f"{API}/health": "health",
    "/metrics": "metrics",
    "/": "admin",
}
"""Path -> the ``endpoint`` label of the request metrics (anything else is ``other``: bounded)."""


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
        endpoint = ENDPOINTS.get(scope["path"], "other")  # bounded label values
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
    token = _client_token(config, env)
    metrics = ClassifierMetrics(registry if registry is not None else CollectorRegistry())
    service = ClassifierService(
        config,
        backend=backend if backend is not None else build_backend(config, env),
        store=store if store is not None else build_store(config, env),
        metrics=metrics,
        clock=clock or time.time,
    )
    app = FastAPI(
        title="Foresight image classifier",
        version="1",
        description="Classifies images into configured categories with an LLM (DashScope) or an ONNX model; "
        "results are cached by the SHA-256 of the uploaded bytes. Failures are never cached.",
        lifespan=_lifespan,
    )
    app.state.classifier = ClassifierState(
        config, service, token, admin_page=render_admin_page(config, auth=token is not None)
    )
    app.add_middleware(_MetricsMiddleware, metrics=metrics)
    app.add_exception_handler(ClassifierError, _classifier_error)  # type: ignore[arg-type]
    for router in ROUTERS:
        app.include_router(router)
    return app


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
            "classifier ready: backend=%s store=%s purged=%d old request-log entries",
            service.backend.name,
            state.config.cache.store,
            removed,
        )
    except StoreError as exc:
        log.error("could not purge the request log at start: %s", exc)
    yield
    await anyio.to_thread.run_sync(service.close)


async def _classifier_error(request: Request, exc: ClassifierError) -> JSONResponse:
    return JSONResponse(
        {**exc.body(), "request_id": request_id(request)},
        status_code=exc.status,
        headers={"WWW-Authenticate": "Bearer"} if exc.status == 401 else None,
    )
