"""Shared Redis cache across two app instances, and the ONNX backend with a model built by torch."""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from classifier_testdata import make_image
from fastapi.testclient import TestClient
from foresight.contract.classifier import ClassifierConfig
from foresight.serving.classifier import create_app
from foresight.serving.classifier.accounting import Ledger, RequestEvent
from foresight.serving.classifier.store.base import CachedResult
from foresight.serving.classifier.store.redis import RedisStore
from foresight.serving.classifier.telemetry import ClassifierMetrics
from PIL import Image
from prometheus_client import CollectorRegistry

from tests.servers.dashscope_standin import DashScopeStandIn
from tests.servers.redis import RedisServer

pytestmark = pytest.mark.integration
ENV = {"DASHSCOPE_API_KEY": "sk-test"}
T_OLD = datetime(2026, 1, 1, 12, tzinfo=UTC).timestamp()
T_NEW = datetime(2026, 2, 1, 12, tzinfo=UTC).timestamp()


def test_two_replicas_share_one_redis(
    standin: DashScopeStandIn, dashscope_config: Callable[..., ClassifierConfig], redis_server: RedisServer
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    cfg = dashscope_config(cache={"store": "redis", "redis_url": redis_server.url, "redis_prefix": prefix})
    img = make_image(11)
    sha = hashlib.sha256(img).hexdigest()
    with TestClient(create_app(cfg, environ=ENV)) as a, TestClient(create_app(cfg, environ=ENV)) as b:
        r = a.post("/api/v1/classify", files={"file": ("a", img, "image/png")}, headers={"X-Client-Id": "c1"})
        assert r.status_code == 200 and r.json()["cached"] is False
        # Replica b never saw the image: its LRU is empty, the shared Redis answers.
        assert b.post("/api/v1/classify/check-cache", json={"sha256": sha}).json()["hit"] is True
        r = b.post("/api/v1/classify", files={"file": ("a", img, "image/png")}, headers={"X-Client-Id": "c2"})
        assert r.json()["cached"] is True and r.json()["category"] == "pets"
        assert standin.calls == 1
        a.get("/api/v1/stats/today")  # flushes a's request log
        stats = b.get("/api/v1/stats/today").json()  # counters are shared too
        assert (stats["requests"], stats["cache_hits"], stats["llm_calls"]) == (3, 2, 1)
        assert stats["unique_clients"] == 3  # c1, c2 and the anonymous check-cache (by address)
        assert stats["categories"] == {"pets": 3}
        assert b.get("/api/v1/health").json() == {"status": "ok", "backend": "dashscope", "store": "redis"}


def test_redis_store_counts_hits_and_purges_old_days(redis_server: RedisServer) -> None:
    store = RedisStore(redis_server.url, prefix=f"t{uuid.uuid4().hex[:8]}")
    store.put(CachedResult("ab" * 32, "pets", 0.9, "dashscope", "2026-01-01T00:00:00+00:00"))
    store.put(CachedResult("ab" * 32, "foods", 0.1, "dashscope", "2026-01-02T00:00:00+00:00"))  # first wins
    ledger = Ledger(
        store,
        ClassifierMetrics(CollectorRegistry()),
        prices={"": 0.01},
        backends={"": "dashscope"},
        clock=lambda: T_NEW,
        timezone="UTC",
        retention_days=90,  # both days kept until the explicit purge below
        start_thread=False,
    )
    for ts, endpoint, client in ((T_OLD, "classify", "x"), (T_NEW, "check-cache", "y")):
        ledger.add(
            RequestEvent(ts, endpoint, 200, "", 0.001, request_id=uuid.uuid4().hex, client_id=client,
                         sha256="ab" * 32, key="ab" * 32, category="pets", outcome="hit")
        )  # fmt: skip
    ledger.flush()
    got = store.get("ab" * 32)
    assert got is not None and got.category == "pets" and got.hit_count == 2
    assert ledger.day_stats("2026-01-01").requests == 1
    assert ledger.day_stats("2026-02-01").cache_hits == 1
    assert store.purge("2026-02-01") > 0
    assert ledger.day_stats("2026-01-01").requests == 0 and ledger.day_stats("2026-02-01").requests == 1
    store.close()


@pytest.fixture(scope="module")
def red_or_blue_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny image classifier: class 0 when the image is redder than blue, class 1 otherwise."""
    torch = pytest.importorskip("torch")

    class RedBlue(torch.nn.Module):  # type: ignore[misc]
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            mean = x.mean(dim=(2, 3))  # N x 3
            red_minus_blue = (mean[:, 0] - mean[:, 2]).unsqueeze(1)
            return torch.cat([red_minus_blue, -red_minus_blue], dim=1) * 10

    path = tmp_path_factory.mktemp("onnx") / "redblue.onnx"
    torch.onnx.export(
        RedBlue(),
        (torch.zeros(1, 3, 32, 32),),
        str(path),
        input_names=["input"],
        output_names=["logits"],
        dynamo=False,
    )
    return path


def _solid(color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (50, 40), color).save(out, format="JPEG")
    return out.getvalue()


def test_onnx_backend_classifies_and_caches(red_or_blue_onnx: Path, tmp_path: Path) -> None:
    cfg = ClassifierConfig.model_validate(
        {
            "categories": [
                {"key": "pets", "zh": "宠物", "en": "Pets"},
                {"key": "foods", "zh": "美食", "en": "Food"},
                {"key": "other", "zh": "其他", "en": "Other"},
            ],
            "backend": {
                "type": "onnx",
                "onnx": {"model_path": str(red_or_blue_onnx), "labels": ["foods", "pets"]},
            },
            "cache": {"sqlite_path": str(tmp_path / "c.db")},
        }
    )
    with TestClient(create_app(cfg, environ={})) as client:
        red = client.post(
            "/api/v1/classify", files={"file": ("r", _solid((220, 20, 20)), "image/jpeg")}
        ).json()
        blue = client.post(
            "/api/v1/classify", files={"file": ("b", _solid((20, 20, 220)), "image/jpeg")}
        ).json()
        again = client.post(
            "/api/v1/classify", files={"file": ("r", _solid((220, 20, 20)), "image/jpeg")}
        ).json()
        stats = client.get("/api/v1/stats/today").json()
    assert (red["category"], red["label_zh"], red["cached"]) == ("foods", "美食", False)
    assert red["confidence"] > 0.9
    assert blue["category"] == "pets"
    assert again["cached"] is True
    assert stats["backend"] == "onnx" and stats["llm_calls"] == 2
