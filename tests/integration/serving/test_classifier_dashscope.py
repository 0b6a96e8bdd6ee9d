"""The classifier service end to end through the real dashscope SDK against the local stand-in."""

from __future__ import annotations

import base64
import hashlib
import io
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from classifier_testdata import API_KEY, make_image
from fastapi.testclient import TestClient
from foresight.contract.classifier import ClassifierConfig
from foresight.serving.classifier import create_app
from PIL import Image
from prometheus_client import CollectorRegistry

from tests.servers.dashscope_standin import DashScopeStandIn

pytestmark = pytest.mark.integration
ENV = {"DASHSCOPE_API_KEY": API_KEY}


def _metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_classify_caches_success_and_never_failure(
    standin: DashScopeStandIn, dashscope_config: Callable[..., ClassifierConfig]
) -> None:
    registry = CollectorRegistry()
    app = create_app(dashscope_config(), registry=registry, environ=ENV)
    img = make_image(1, size=(2000, 600))
    sha = hashlib.sha256(img).hexdigest()
    with TestClient(app) as client:
        r = client.post("/api/v1/classify/check-cache", json={"sha256": sha})
        assert r.status_code == 200 and r.json()["hit"] is False

        r = client.post(
            "/api/v1/classify",
            files={"file": ("x.bin", img, "application/octet-stream")},
            headers={"X-Client-Id": "phone-a"},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["category"], body["label_zh"], body["label_en"]) == ("pets", "宠物", "Pets")
        assert body["cached"] is False and body["sha256"] == sha and body["confidence"] == 1.0
        assert standin.calls == 1
        # What reached "DashScope": the key, the prompt listing the categories, a downscaled JPEG.
        sent = standin.requests[0]
        assert sent.headers["Authorization"] == f"Bearer {API_KEY}"
        assert sent.body["model"] == "qwen-vl-plus"
        assert "travel_scenery" in sent.texts()[0]
        uri = sent.images()[0]
        assert uri.startswith("data:image/jpeg;base64,")
        assert Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).size == (1024, 307)

        # Same bytes again, as JSON base64: a cache hit, no LLM call.
        r = client.post(
            "/api/v1/classify",
            json={"image_base64": base64.b64encode(img).decode()},
            headers={"X-Client-Id": "phone-b"},
        )
        assert r.status_code == 200 and r.json()["cached"] is True and r.json()["category"] == "pets"
        assert standin.calls == 1
        r = client.post("/api/v1/classify/check-cache", json={"sha256": sha.upper()})
        assert r.json()["hit"] is True and r.json()["result"]["category"] == "pets"

        # A failing upstream: retried (max_retries=2 -> 3 calls), then 502, not cached.
        other = make_image(2)
        standin.answer = "foods"
        standin.fail_next(500, times=3)
        r = client.post("/api/v1/classify", files={"file": ("y.png", other, "image/png")})
        assert r.status_code == 502
        err = r.json()
        assert err["error"] == "upstream_error" and err["detail"]["upstream_status"] == 500
        assert err["detail"]["attempts"] == 3 and err["request_id"]
        assert standin.calls == 4
        other_sha = hashlib.sha256(other).hexdigest()
        assert client.post("/api/v1/classify/check-cache", json={"sha256": other_sha}).json()["hit"] is False
        # 429 once, then the stand-in recovers: the retry succeeds within the same request.
        standin.fail_next(429, times=1)
        r = client.post("/api/v1/classify", files={"file": ("y.png", other, "image/png")})
        assert r.status_code == 200 and r.json()["category"] == "foods" and r.json()["cached"] is False
        assert standin.calls == 6

        stats = client.get("/api/v1/stats/today").json()
        assert stats["classify_requests"] == 4 and stats["check_cache_requests"] == 3
        assert stats["requests"] == 7
        assert stats["cache_hits"] == 2  # one classify, one check-cache
        assert stats["cache_misses"] == 3  # classify requests that went to the backend (one failed)
        assert stats["hit_rate"] == pytest.approx(0.4)
        # Calls are upstream attempts, retries included (1 + 3 failed + 2), billed when answered.
        assert stats["llm_calls"] == 6 and stats["llm_failures"] == 1 and stats["errors"] == 1
        assert stats["llm_calls_billed"] == 2 and stats["estimated_cost_spent"] == pytest.approx(0.02)
        assert stats["llm_calls_saved"] == 2 and stats["estimated_cost_saved"] == pytest.approx(0.02)
        assert stats["unique_clients"] == 3  # phone-a, phone-b, testclient's address
        assert stats["categories"] == {"pets": 3, "foods": 1}

        text = client.get("/metrics").text
        assert "foresight_classifier_requests_total" in text
        # Outside experiments every series carries variant="".
        requests = "foresight_classifier_requests_total"
        assert _metric(registry, requests, endpoint="classify", status="200", variant="") == 3
        assert _metric(registry, requests, endpoint="classify", status="502", variant="") == 1
        assert (
            _metric(registry, "foresight_classifier_cache_hits_total", endpoint="classify", variant="") == 1
        )
        assert (
            _metric(registry, "foresight_classifier_cache_hits_total", endpoint="check-cache", variant="")
            == 1
        )
        calls = "foresight_classifier_backend_calls_total"
        assert _metric(registry, calls, backend="dashscope", variant="") == 6
        assert (
            _metric(
                registry, "foresight_classifier_backend_calls_billed_total", backend="dashscope", variant=""
            )
            == 2
        )
        failures = "foresight_classifier_backend_failures_total"
        assert _metric(registry, failures, backend="dashscope", variant="") == 1
        assert (
            _metric(registry, "foresight_classifier_classifications_total", category="pets", variant="") == 3
        )
        assert (
            _metric(registry, "foresight_classifier_request_seconds_count", endpoint="classify", variant="")
            == 4
        )


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ('{"category": "screenshot", "confidence": 0.6}', "screenshot"),
        ("这是一张证件照", "idcard"),
        ("Something unrecognisable", "other"),
    ],
)
def test_llm_answers_are_parsed_through_the_sdk(
    standin: DashScopeStandIn, dashscope_config: Callable[..., ClassifierConfig], answer: str, expected: str
) -> None:
    standin.answer = answer
    with TestClient(create_app(dashscope_config(), environ=ENV)) as client:
        r = client.post("/api/v1/classify", files={"file": ("a", make_image(7), "image/png")})
    assert r.status_code == 200 and r.json()["category"] == expected


def test_timeout_and_client_errors_are_502_without_pointless_retries(
    standin: DashScopeStandIn, dashscope_config: Callable[..., ClassifierConfig]
) -> None:
    cfg = dashscope_config(
        backend={
            "dashscope": {
                "base_url": standin.base_url,
                "max_retries": 1,
                "backoff_seconds": 0.01,
                "timeout_seconds": 0.3,
            }
        }
    )
    with TestClient(create_app(cfg, environ=ENV)) as client:
        standin.fail_next(401, times=1)  # a bad key: not retried
        r = client.post("/api/v1/classify", files={"file": ("a", make_image(8), "image/png")})
        assert r.status_code == 502 and r.json()["detail"]["upstream_status"] == 401 and standin.calls == 1
        standin.delay = 1.0  # slower than timeout_seconds: both attempts time out
        r = client.post("/api/v1/classify", files={"file": ("a", make_image(9), "image/png")})
        assert r.status_code == 502 and r.json()["detail"]["upstream_code"] == "ReadTimeout"
        assert standin.calls == 3


def test_sqlite_cache_survives_a_restart(
    standin: DashScopeStandIn, dashscope_config: Callable[..., ClassifierConfig]
) -> None:
    img = make_image(3)
    cfg = dashscope_config()
    with TestClient(create_app(cfg, environ=ENV)) as client:
        assert (
            client.post("/api/v1/classify", files={"file": ("a", img, "image/png")}).json()["cached"] is False
        )
    with TestClient(create_app(cfg, environ=ENV)) as client:  # a new process would look the same
        r = client.post("/api/v1/classify", files={"file": ("a", img, "image/png")})
        assert r.json()["cached"] is True and r.json()["category"] == "pets"
        assert client.get("/api/v1/stats/today").json()["requests"] == 2
    assert standin.calls == 1
    assert Path(cfg.cache.sqlite_path).exists()


def test_limits_auth_and_logs_hold_no_secrets(
    standin: DashScopeStandIn,
    dashscope_config: Callable[..., ClassifierConfig],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    token = "client-token-xyz-987"
    cfg = dashscope_config(
        auth={"token_env": "CLASSIFIER_TOKEN"}, limits={"max_upload_bytes": 200_000, "max_pixels": 1_000_000}
    )
    img = make_image(4)
    with TestClient(create_app(cfg, environ={**ENV, "CLASSIFIER_TOKEN": token})) as client:
        assert client.post("/api/v1/classify", files={"file": ("a", img, "image/png")}).status_code == 401
        assert client.get("/api/v1/stats/today").status_code == 401
        bad = client.post(
            "/api/v1/classify",
            files={"file": ("a", img, "image/png")},
            headers={"Authorization": "Bearer wrong"},
        )
        assert bad.status_code == 401 and bad.json()["error"] == "unauthorized"
        assert client.get("/api/v1/health").status_code == 200  # probes need no token
        auth = {"Authorization": f"Bearer {token}"}
        r = client.post(
            "/api/v1/classify",
            files={"file": ("cat.jpg", b"MZ\x90\x00 not an image", "image/jpeg")},
            headers=auth,
        )
        assert r.status_code == 415  # a .jpg name and image/jpeg type do not make it an image
        big = make_image(5, size=(400, 400), fmt="BMP")  # 480 KB > 200 KB
        r = client.post("/api/v1/classify", files={"file": ("a.bmp", big, "image/bmp")}, headers=auth)
        assert r.status_code == 413 and r.json()["error"] == "upload_too_large"
        bomb = io.BytesIO()
        Image.new("L", (2000, 2000)).save(bomb, format="PNG")  # tiny file, 4 Mpx > 1 Mpx
        r = client.post(
            "/api/v1/classify", files={"file": ("b.png", bomb.getvalue(), "image/png")}, headers=auth
        )
        assert r.status_code == 413 and r.json()["error"] == "too_many_pixels"
        r = client.post("/api/v1/classify", json={"image_base64": "!!notbase64!!"}, headers=auth)
        assert r.status_code == 422
        r = client.post("/api/v1/classify", files={"file": ("a", img, "image/png")}, headers=auth)
        assert r.status_code == 200
        assert standin.calls == 1
    logs = caplog.text
    assert logs  # the service did log
    assert "classified request_id=" in logs
    for secret in (
        API_KEY,
        token,
        base64.b64encode(img).decode()[:40],
        standin.requests[0].images()[0][30:90],
    ):
        assert secret not in logs


def test_missing_api_key_fails_at_startup_with_a_clear_message(
    dashscope_config: Callable[..., ClassifierConfig],
) -> None:
    from foresight.serving.classifier.errors import ConfigError

    with pytest.raises(ConfigError, match="DASHSCOPE_API_KEY"):
        create_app(dashscope_config(), environ={})
