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
    "FeedbackRequest",
    "FeedbackResponse",
    "HealthResponse",
    "ImageBase64Request",
    "RoutingResponse",
    "StatsResponse",
    "VariantStats",
    "error_response",
]

VARIANT_DOC = "The variant that answered (header X-Foresight-Variant too); null outside experiments."


class ClassifyResult(BaseModel):
    category: str = Field(description="The category key.")
    label_zh: str
    label_en: str
    confidence: float = Field(ge=0, le=1)
    sha256: str


class ClassifyResponse(ClassifyResult):
    cached: bool = Field(description="Answered from the cache (no backend call).")
    low_confidence: bool = Field(
        description="The model named no category or several: the answer is a guess and was not cached."
    )
    variant: str | None = Field(description=VARIANT_DOC)
    request_id: str = Field(description="Give it to the feedback endpoint with the true category.")
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
    variant: str | None = Field(description=VARIANT_DOC)
    request_id: str


class VariantStats(BaseModel):
    """One variant's numbers of the day (definitions: the README's ClassifierService metrics)."""

    requests: int
    classify_requests: int
    check_cache_requests: int
    cache_hits: int
    cache_misses: int = Field(description="classify requests for an image not in the cache.")
    check_cache_misses: int
    hit_rate: float | None = Field(description="cache_hits / (cache_hits + cache_misses); null before any.")
    coalesced: int = Field(description="classify requests that shared another request's backend call.")
    uncertain_answers: int = Field(description="Answers naming no category or several: not cached.")
    llm_failures: int = Field(description="classify requests the backend failed (after retries, deadline).")
    rejected: int = Field(description="Requests refused for their input (401, 413, 415, 422).")
    errors: int = Field(description="Requests answered with a status of 400 or more.")
    llm_calls: int = Field(description="Backend calls attempted, every retry included.")
    llm_calls_billed: int = Field(description="Backend calls the upstream answered (what it bills).")
    llm_calls_saved: int = Field(description="Backend calls not made: cache hits plus coalesced requests.")
    price_per_call: float
    estimated_cost_spent: float = Field(description="price_per_call x llm_calls_billed.")
    estimated_cost_saved: float = Field(description="price_per_call x llm_calls_saved.")
    categories: dict[str, int] = Field(description="Answers served per category.")
    feedback_correct: int
    feedback_incorrect: int
    accuracy: float | None = Field(description="feedback_correct / all feedback; null before any.")
    backend: str


class StatsResponse(VariantStats):
    day: str
    timezone: str
    unique_clients: int
    variants: dict[str, VariantStats] = Field(
        description="Per variant (empty outside experiments: the totals are the one variant's)."
    )


class FeedbackRequest(BaseModel):
    request_id: str = Field(
        min_length=1, max_length=64, pattern=r"^[0-9a-zA-Z_-]+$", description="From the answer."
    )
    label: str = Field(min_length=1, max_length=63, description="The true category key of that image.")


class FeedbackResponse(BaseModel):
    request_id: str
    variant: str | None = Field(description="The variant that answered the request.")
    category: str = Field(description="What the service answered.")
    label: str = Field(description="The true category recorded (the first feedback's).")
    correct: bool
    recorded: bool = Field(
        description="This call recorded the feedback; false: the same label was already recorded."
    )


class HealthResponse(BaseModel):
    status: str
    backend: str
    store: str


class RoutingResponse(BaseModel):
    variants: list[str] = Field(description="The variants this pod serves, the control first.")
    source: str = Field(description="`file`: the routing file's split; `default`: all to the control.")
    weights: dict[str, int] = Field(description="Percent of requests per variant.")
    experiment: str | None = None
    generation: int | None = None
    stickiness_header: str | None = None


class ErrorBody(BaseModel):
    """Every error response of the service (its own and the framework's)."""

    error: str = Field(description="A stable machine-readable code (`upstream_timeout`, `not_found`...).")
    message: str = Field(description="What went wrong and what to do.")
    request_id: str = Field(description="Also in the X-Request-Id header and the service's log line.")
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
