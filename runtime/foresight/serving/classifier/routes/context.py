"""What every route needs: the service state of its application, the request's id, auth, the request log."""

from __future__ import annotations

import hmac
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import anyio
from fastapi import Request

from foresight.contract.classifier import ClassifierConfig

from ..errors import Unauthorized
from ..service import ClassifierService
from ..store.base import CachedResult, RequestRecord

__all__ = [
    "API",
    "ClassifierState",
    "client_id",
    "record",
    "request_id",
    "require_auth",
    "result_body",
    "state_of",
]

API = "/api/v1"


@dataclass
class ClassifierState:
    """One application's service and settings, kept on ``app.state.classifier``."""

    config: ClassifierConfig
    service: ClassifierService
    token: str | None
    """The client token when client auth is on (read from the environment once, at start)."""
    admin_page: str
    """The admin page, rendered once at start."""
    _limiter: anyio.CapacityLimiter | None = field(default=None, repr=False)

    def backend_limiter(self) -> anyio.CapacityLimiter:
        """Caps concurrent backend calls at ``backend.concurrency``."""
        # Created on first use: a CapacityLimiter needs the running event loop.
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.config.backend.concurrency)
        return self._limiter


def state_of(request: Request) -> ClassifierState:
    """The state of the application ``request`` came to."""
    state: ClassifierState = request.app.state.classifier
    return state


def request_id(request: Request) -> str:
    """This request's id (made on first use; error bodies and the request log carry it)."""
    rid: str | None = getattr(request.state, "request_id", None)
    if rid is None:
        rid = uuid.uuid4().hex
        request.state.request_id = rid
    return rid


def client_id(request: Request) -> str:
    """Who is asking, for the statistics: ``X-Client-Id`` when sent, else the peer address."""
    cid = request.headers.get("x-client-id")
    if cid:
        return cid[:128]
    return request.client.host if request.client else "unknown"


async def require_auth(request: Request) -> None:
    """A route dependency: refuses the request when client auth is on and its token is wrong."""
    token = state_of(request).token
    if token is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise Unauthorized("send `Authorization: Bearer <token>` with the service's client token")


def record(request: Request, endpoint: str, start: float, status: int, **fields: Any) -> float:
    """Add the request to the request log (in the background); returns its latency in ms."""
    service = state_of(request).service
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


def result_body(config: ClassifierConfig, r: CachedResult) -> dict[str, Any]:
    """A cached result as the API returns it, with the category's labels."""
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
