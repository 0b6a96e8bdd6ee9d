"""Errors of the classifier service, each mapped to one HTTP status and a JSON body that says what to do.

Every error response of the service, its own and the framework's (404, 405, 422), has one shape:
``{"error": <code>, "message": <what to do>, "request_id": <id>}`` plus ``detail`` where there is
more to say; the request id is also in the ``X-Request-Id`` header and the log line. ``outcome``
says how a failed request is counted (:mod:`.accounting`).

Upstream failures (the backend, after its retries and within the request's deadline):

- ``429 upstream_throttled`` when the last answer was a 429, ``503 upstream_unavailable`` when it was
  a 503, both with ``Retry-After`` (the upstream's own when it sent one);
- ``502 upstream_timeout`` when the request's deadline ran out;
- ``502 upstream_error`` for everything else (other 5xx, a malformed answer, a refused key).
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "BadRequest",
    "ClassifierError",
    "ConfigError",
    "FeedbackConflict",
    "ImageRejected",
    "StoreError",
    "Unauthorized",
    "UnknownRequest",
    "UpstreamError",
    "UpstreamThrottled",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "error_from_dict",
]


class ClassifierError(Exception):
    """Base: ``status`` is the HTTP status, ``code`` a stable machine-readable name, ``outcome``
    how the request is counted, ``retry_after`` (seconds) the ``Retry-After`` header, if any."""

    status: int = 500
    code: str = "internal_error"
    outcome: str = "error"
    retry_after: float | None = None
    shared: bool = False
    """This request waited for another request's backend call, which failed (:mod:`.flights`)."""

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def body(self) -> dict[str, Any]:
        return {
            "error": self.code,
            "message": self.message,
            **({"detail": self.detail} if self.detail else {}),
        }

    def headers(self) -> dict[str, str]:
        """Response headers this error needs (``Retry-After``, ``WWW-Authenticate``)."""
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(max(1, math.ceil(self.retry_after)))}

    def to_dict(self) -> dict[str, Any]:
        """What another process needs to answer its requests with the same error (shared failures)."""
        return {
            "status": self.status,
            "code": self.code,
            "outcome": self.outcome,
            "message": self.message,
            "detail": self.detail,
            "retry_after": self.retry_after,
        }


def error_from_dict(data: dict[str, Any]) -> ClassifierError:
    """The error :meth:`ClassifierError.to_dict` described (status, code, outcome and all)."""
    err = ClassifierError(str(data.get("message", "")), **dict(data.get("detail") or {}))
    err.status = int(data.get("status", 502))
    err.code = str(data.get("code", "upstream_error"))
    err.outcome = str(data.get("outcome", "failed"))
    retry = data.get("retry_after")
    err.retry_after = float(retry) if isinstance(retry, int | float) else None
    return err


class ConfigError(ClassifierError):
    """The config file or environment is wrong; the process cannot start."""

    code = "config_error"


class Unauthorized(ClassifierError):
    """Client auth is on and the request has no (or the wrong) bearer token."""

    status = 401
    code = "unauthorized"
    outcome = "rejected"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class ImageRejected(ClassifierError):
    """The upload is not an acceptable image (too big, wrong type, corrupt), or the body is malformed."""

    code = "image_rejected"
    outcome = "rejected"

    def __init__(self, message: str, *, status: int, code: str, **detail: Any) -> None:
        super().__init__(message, **detail)
        self.status = status
        self.code = code


class BadRequest(ClassifierError):
    """A request body that is well-formed but names something that does not exist (a category...)."""

    status = 422
    code = "bad_request"
    outcome = "rejected"


class UnknownRequest(ClassifierError):
    """Feedback for a request id the service did not answer (or no longer keeps)."""

    status = 404
    code = "unknown_request"
    outcome = "rejected"


class FeedbackConflict(ClassifierError):
    """A second, different label for a request that already has feedback."""

    status = 409
    code = "feedback_conflict"
    outcome = "rejected"


class UpstreamError(ClassifierError):
    """The backend (LLM API or model) failed after retries. Never cached; the client may retry later."""

    status = 502
    code = "upstream_error"
    outcome = "failed"


class UpstreamTimeout(UpstreamError):
    """The request's deadline ran out before the backend answered."""

    code = "upstream_timeout"


class UpstreamThrottled(UpstreamError):
    """The upstream kept answering 429: the client should come back after ``Retry-After``."""

    status = 429
    code = "upstream_throttled"

    def __init__(self, message: str, *, retry_after: float, **detail: Any) -> None:
        super().__init__(message, **detail)
        self.retry_after = retry_after


class UpstreamUnavailable(UpstreamError):
    """The upstream kept answering 503: the client should come back after ``Retry-After``."""

    status = 503
    code = "upstream_unavailable"

    def __init__(self, message: str, *, retry_after: float, **detail: Any) -> None:
        super().__init__(message, **detail)
        self.retry_after = retry_after


class StoreError(ClassifierError):
    """The cache / statistics store failed."""

    status = 503
    code = "store_unavailable"
    outcome = "unavailable"
