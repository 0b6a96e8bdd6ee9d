"""Errors of the classifier service, each mapped to one HTTP status and a JSON body that says what to do."""

from __future__ import annotations

from typing import Any

__all__ = ["ClassifierError", "ConfigError", "ImageRejected", "StoreError", "Unauthorized", "UpstreamError"]


class ClassifierError(Exception):
    """Base: ``status`` is the HTTP status, ``code`` a stable machine-readable name."""

    status: int = 500
    code: str = "internal_error"

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


class ConfigError(ClassifierError):
    """The config file or environment is wrong; the process cannot start."""

    code = "config_error"


class Unauthorized(ClassifierError):
    """Client auth is on and the request has no (or the wrong) bearer token."""

    status = 401
    code = "unauthorized"


class ImageRejected(ClassifierError):
    """The upload is not an acceptable image (too big, wrong type, undecodable)."""

    code = "image_rejected"

    def __init__(self, message: str, *, status: int, code: str, **detail: Any) -> None:
        super().__init__(message, **detail)
        self.status = status
        self.code = code


class UpstreamError(ClassifierError):
    """The backend (LLM API or model) failed after retries. Never cached; the client may retry later."""

    status = 502
    code = "upstream_error"


class StoreError(ClassifierError):
    """The cache / statistics store failed."""

    status = 503
    code = "store_unavailable"
