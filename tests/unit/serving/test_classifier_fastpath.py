"""The front layer's fast paths answer a cached image with the same response as the routes.

The same requests are sent twice: once answered from the in-process cache by the front layer,
once (the LRU emptied) by the FastAPI routes from the store. Everything but the request id and the
latency must be equal, headers included; bodies the fast path does not read go to the routes.
"""

from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from foresight.contract.classifier import ClassifierConfig
from foresight.serving.classifier import create_app
from foresight.serving.classifier.backends.base import BackendResult, ClassifierBackend, OnCall
from foresight.serving.classifier.images import CheckedImage
from foresight.serving.classifier.service import ClassifierService
from foresight.serving.classifier.store.lru import LruCache
from PIL import Image


class Pets(ClassifierBackend[bytes]):
    name = "pets"

    def prepare(self, image: CheckedImage) -> bytes:
        return image.data

    def classify(self, prepared: bytes, *, deadline: float, on_call: OnCall) -> BackendResult:
        on_call(True)
        return BackendResult("pets", 0.9)


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (30, 20), (1, 2, 3)).save(out, format="PNG")
    return out.getvalue()


def _same(fast: Any, slow: Any) -> None:
    assert fast.status_code == slow.status_code == 200
    a, b = fast.json(), slow.json()
    for volatile in ("request_id", "latency_ms"):
        a.pop(volatile, None)
        b.pop(volatile, None)
    assert a == b
    assert fast.headers["content-type"] == slow.headers["content-type"] == "application/json"
    assert fast.headers["x-request-id"] == fast.json()["request_id"]


def test_fast_and_slow_answers_are_the_same(tmp_path: Path) -> None:
    config = ClassifierConfig.model_validate({"cache": {"sqlite_path": str(tmp_path / "c.db")}})
    image = _png()
    sha = hashlib.sha256(image).hexdigest()
    requests: list[dict[str, Any]] = [
        {"url": "/api/v1/classify/check-cache", "json": {"sha256": sha}},
        {"url": "/api/v1/classify/check-cache", "json": {"sha256": sha.upper()}},
        {"url": "/api/v1/classify", "files": {"file": ("a.png", image, "image/png")}},
        {"url": "/api/v1/classify", "json": {"image_base64": base64.b64encode(image).decode()}},
        {
            "url": "/api/v1/classify",
            "json": {"image_base64": "data:image/png;base64," + base64.b64encode(image).decode()},
        },
    ]
    with TestClient(create_app(config, backend=Pets(), environ={})) as client:
        service: ClassifierService = client.app.state.classifier.service  # type: ignore[attr-defined]
        first = client.post("/api/v1/classify", files={"file": ("a.png", image, "image/png")})
        assert first.json()["cached"] is False
        front = client.app.front  # type: ignore[attr-defined]
        routes = front.app

        async def not_here(scope: Any, receive: Any, send: Any) -> None:
            raise AssertionError(f"{scope['path']} reached the routes: the fast path did not answer")

        front.app = not_here
        fast = [client.post(**r) for r in requests]
        front.app = routes
        service.lru = LruCache(0)  # nothing in process: the routes answer from the store
        slow = [client.post(**r) for r in requests]
        stats = client.get("/api/v1/stats/today").json()
    for f, s in zip(fast, slow, strict=True):
        _same(f, s)
    assert fast[2].json()["cached"] is True and fast[0].json()["hit"] is True
    assert stats["cache_hits"] == 2 * len(requests) and stats["llm_calls"] == 1
