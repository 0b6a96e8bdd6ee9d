"""The JSON bodies of the classify and check-cache answers, rendered once for both paths.

The fast path (:mod:`.fastpath`) and the FastAPI routes answer with the same bytes: a result's
fields are rendered once, when the result enters the in-process cache (:class:`CacheEntry`), and a
response only adds its own fields (cached, request id, variant, latency) around them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from foresight.contract.classifier import ClassifierConfig

from .store.base import CachedResult

__all__ = ["CacheEntry", "check_cache_body", "classify_body", "fragment", "result_fields"]


@dataclass(frozen=True)
class CacheEntry:
    """A cached result and its fields' JSON, without the braces (``"category":...,"sha256":...``)."""

    result: CachedResult
    fragment: bytes


def result_fields(config: ClassifierConfig, category: str, confidence: float, sha256: str) -> dict[str, Any]:
    """A result as the API returns it, with the category's labels."""
    try:
        cat = config.category(category)
        zh, en = cat.zh, cat.en
    except KeyError:  # cached under an older category set
        zh = en = category
    return {"category": category, "label_zh": zh, "label_en": en, "confidence": confidence, "sha256": sha256}


def fragment(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))[1:-1].encode()


def _variant(variant: str) -> bytes:
    return json.dumps(variant).encode() if variant else b"null"


def classify_body(
    fields: bytes, *, cached: bool, low_confidence: bool, variant: str, request_id: str, latency_ms: float
) -> bytes:
    return b"".join(
        (
            b"{",
            fields,
            b',"cached":',
            b"true" if cached else b"false",
            b',"low_confidence":',
            b"true" if low_confidence else b"false",
            b',"variant":',
            _variant(variant),
            b',"request_id":"',
            request_id.encode(),
            b'","latency_ms":',
            repr(round(latency_ms, 3)).encode(),
            b"}",
        )
    )


def check_cache_body(fields: bytes | None, *, variant: str, request_id: str) -> bytes:
    result = b"null" if fields is None else b"{" + fields + b"}"
    hit = b"false" if fields is None else b"true"
    return b"".join(
        (
            b'{"hit":',
            hit,
            b',"result":',
            result,
            b',"variant":',
            _variant(variant),
            b',"request_id":"',
            request_id.encode(),
            b'"}',
        )
    )
