"""What every route needs: the service state of its application, the request's info, auth.

:class:`RequestInfo` is made by the front layer (:mod:`..front`) for every request (its id, the
variant it was routed to, when it started) and filled in by the route (the image hash, the
answer, the outcome); the front layer turns it into the request's one event when it ends.
"""

from __future__ import annotations

import hmac
import time
import uuid
from dataclasses import dataclass

from fastapi import Request

from foresight.contract.classifier import ClassifierConfig

from ..drift import DriftMonitor
from ..errors import Unauthorized
from ..routing import RoutingTable
from ..service import ClassifierService

__all__ = [
    "API",
    "ClassifierState",
    "RequestInfo",
    "authorized",
    "info_of",
    "request_id",
    "require_auth",
    "state_of",
]

API = "/api/v1"


@dataclass
class ClassifierState:
    """One application's service and settings, kept on ``app.state.classifier``."""

    config: ClassifierConfig
    service: ClassifierService
    routing: RoutingTable
    token: str | None
    """The client token when client auth is on (read from the environment once, at start)."""
    admin_page: str
    """The admin page, rendered once at start."""
    drift: DriftMonitor
    multiprocess_dir: str | None = None
    """Where the worker processes keep their metrics (several workers), else None."""


@dataclass(slots=True)
class RequestInfo:
    """One request as the front layer and the route see it (``scope["foresight"]``)."""

    request_id: str
    endpoint: str
    start: float
    """``time.monotonic()`` when the request arrived: its deadline counts from here."""
    variant: str = ""
    client_id: str = ""
    sha256: str | None = None
    key: str | None = None
    category: str | None = None
    outcome: str = ""
    shared: bool = False


def state_of(request: Request) -> ClassifierState:
    """The state of the application ``request`` came to."""
    state: ClassifierState = request.app.state.classifier
    return state


def info_of(request: Request) -> RequestInfo:
    """This request's info (made by the front layer; made here for a request that bypassed it)."""
    info: RequestInfo | None = request.scope.get("foresight")
    if info is None:
        info = RequestInfo(uuid.uuid4().hex, "other", time.monotonic())
        request.scope["foresight"] = info
    return info


def request_id(request: Request) -> str:
    """This request's id (error bodies, the ``X-Request-Id`` header and the log carry it)."""
    return info_of(request).request_id


def authorized(token: str | None, header: str) -> bool:
    """Whether an ``Authorization`` header value carries ``token`` (always, when auth is off)."""
    if token is None:
        return True
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


async def require_auth(request: Request) -> None:
    """A route dependency: refuses the request when client auth is on and its token is wrong."""
    if not authorized(state_of(request).token, request.headers.get("authorization", "")):
        raise Unauthorized("send `Authorization: Bearer <token>` with the service's client token")
