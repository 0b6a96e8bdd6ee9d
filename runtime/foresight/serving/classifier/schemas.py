"""The classifier HTTP API's request and response bodies: what FastAPI validates and OpenAPI shows."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = [
    "AUTH_ERROR",
    "CLASSIFY_BODY",
    "CheckCacheRequest",
    "CheckCacheResponse",
    "ClassifyResponse",
    "ClassifyResult",
    "ErrorBody",
    "HealthResponse",
    "ImageBase64Request",
    "StatsResponse",
    "error_response",
]


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


def error_response(description: str) -> dict[str, Any]:
    """An OpenAPI response entry with an :class:`ErrorBody`."""
    return {"model": ErrorBody, "description": description}


AUTH_ERROR: dict[int | str, dict[str, Any]] = {
    401: error_response("Missing or wrong bearer token (only when client auth is configured).")
}
CLASSIFY_BODY = {
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
"""``classify`` reads its body itself (to refuse an oversized one unread), so OpenAPI is told."""
