"""The layer every request passes first: its id, its variant, the cached fast paths, its one event.

A plain ASGI layer (cheap on the hot path) in front of FastAPI (:class:`~.app.ClassifierApp`):

- gives the request its id (the ``X-Request-Id`` response header, error bodies, log lines);
- routes a classify / check-cache request to its variant (:mod:`.routing`) and names it in the
  ``X-Foresight-Variant`` response header;
- answers a check-cache hit, or a classify of bytes already in the in-process cache, itself
  (:mod:`.fastpath`), with the bytes the routes would send; everything else goes to FastAPI;
- when the response is sent, adds the request's :class:`~.accounting.RequestEvent` to the ledger,
  from which both ``/metrics`` and ``/stats/today`` are computed.
"""

from __future__ import annotations

import hashlib
import os
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from foresight.contract.experiment import VARIANT_HEADER

from .accounting import Outcome, RequestEvent
from .fastpath import check_cache_sha, upload_bytes
from .render import check_cache_body, classify_body
from .routes.context import API, ClassifierState, RequestInfo, authorized
from .store.base import cache_key
from .telemetry import API_ENDPOINTS

__all__ = ["ENDPOINTS", "Front", "default_outcome"]

ENDPOINTS = {
    f"{API}/classify": "classify",
    f"{API}/classify/check-cache": "check-cache",
    f"{API}/feedback": "feedback",
    f"{API}/stats/today": "stats",
    f"{API}/health": "health",
    "/metrics": "metrics",
    "/": "admin",
}
"""Path -> the ``endpoint`` label of the request metrics (anything else is ``other``: bounded)."""

_VARIANT = VARIANT_HEADER.lower().encode()
_JSON = (b"content-type", b"application/json")


def default_outcome(status: int) -> str:
    """How a request the route did not describe is counted, from its status alone."""
    if status in (429, 502, 504):
        return Outcome.FAILED
    if status == 503:
        return Outcome.UNAVAILABLE
    if status >= 500:
        return Outcome.ERROR
    if status >= 400:
        return Outcome.REJECTED
    return ""


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the already-read body over again, then waits as the server would."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _respond(send: Send, body: bytes, extra: list[tuple[bytes, bytes]]) -> None:
    headers = [_JSON, (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Front:
    def __init__(self, app: ASGIApp, state: ClassifierState) -> None:
        self.app = app
        self.state = state
        limits = state.config.limits
        # As uploads.py: base64 inflates by 4/3 and multipart adds headers; beyond that it is a 413.
        self._body_limit = limits.max_upload_bytes * 4 // 3 + 64 * 1024

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        service = self.state.service
        endpoint = ENDPOINTS.get(scope["path"], "other")
        info = RequestInfo(os.urandom(16).hex(), endpoint, time.monotonic())
        scope["foresight"] = info
        extra = [(b"x-request-id", info.request_id.encode())]
        api = endpoint in API_ENDPOINTS
        if api:
            client = scope.get("client")
            ip = client[0] if client else None
            headers = scope["headers"]
            info.variant = self.state.routing.choose(headers, ip, info.request_id)
            info.client_id = next((v.decode("latin-1")[:128] for k, v in headers if k == b"x-client-id"), "")
            info.client_id = info.client_id or ip or "unknown"
            if info.variant:
                extra.append((_VARIANT, info.variant.encode()))
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        try:
            if api and scope["method"] == "POST":
                slow = await self._fast(scope, receive, send, info, extra)
                if slow is None:
                    status = 200
                    return
                receive = slow
            await self.app(scope, receive, send_wrapper)
        finally:
            service.ledger.add(
                RequestEvent(
                    ts=service.clock(),
                    endpoint=endpoint,
                    status=status,
                    variant=info.variant,
                    latency_s=time.monotonic() - info.start,
                    request_id=info.request_id,
                    client_id=info.client_id,
                    sha256=info.sha256,
                    key=info.key,
                    category=info.category,
                    outcome=info.outcome or default_outcome(status),
                    shared=info.shared,
                )
            )

    async def _fast(
        self, scope: Scope, receive: Receive, send: Send, info: RequestInfo, extra: list[tuple[bytes, bytes]]
    ) -> Receive | None:
        """None when answered here (with status 200 and the ``extra`` headers); otherwise the
        receive the routes read the body from."""
        length = ctype = auth = b""
        for k, v in scope["headers"]:
            if k == b"content-length":
                length = v
            elif k == b"content-type":
                ctype = v
            elif k == b"authorization":
                auth = v
        if not length.isdigit() or int(length) > self._body_limit:
            return receive  # chunked or too big: the routes stream it against the limit
        if not authorized(self.state.token, auth.decode("latin-1")):
            return receive  # the routes answer the 401
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return receive  # the client left: nothing to answer
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if info.endpoint == "check-cache":
            answered = await self._check_cache(body, info, send, extra)
        else:
            answered = await self._classify(ctype, body, info, send, extra)
        return None if answered else _replay(body, receive)

    async def _check_cache(
        self, body: bytes, info: RequestInfo, send: Send, extra: list[tuple[bytes, bytes]]
    ) -> bool:
        sha = check_cache_sha(body)
        if sha is None:
            return False
        key = cache_key(info.variant, sha)
        entry = self.state.service.lru.get(key)
        if entry is None:
            return False
        info.sha256, info.key, info.category, info.outcome = sha, key, entry.result.category, Outcome.HIT
        body = check_cache_body(entry.fragment, variant=info.variant, request_id=info.request_id)
        await _respond(send, body, extra)
        return True

    async def _classify(
        self, ctype: bytes, body: bytes, info: RequestInfo, send: Send, extra: list[tuple[bytes, bytes]]
    ) -> bool:
        data = upload_bytes(ctype, body)
        if not data or len(data) > self.state.config.limits.max_upload_bytes:
            return False
        sha = hashlib.sha256(data).hexdigest()
        key = cache_key(info.variant, sha)
        entry = self.state.service.lru.get(key)
        if entry is None:
            return False
        info.sha256, info.key, info.category, info.outcome = sha, key, entry.result.category, Outcome.HIT
        latency_ms = (time.monotonic() - info.start) * 1000
        await _respond(
            send,
            classify_body(
                entry.fragment,
                cached=True,
                low_confidence=False,
                variant=info.variant,
                request_id=info.request_id,
                latency_ms=latency_ms,
            ),
            extra,
        )
        return True
