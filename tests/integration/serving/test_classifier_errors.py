"""Every bad request is a 4xx with the one error shape, the framework's included, counted once.

``{"error", "message", "request_id"}`` for 404, 405 and 422 from the framework as for the
service's own 413, 415, 422, 502; the request id in ``X-Request-Id`` and in the log line; a corrupt
image that passes the first check and fails while being decoded for the backend is a 415, never
a 500, and every rejected request is one request in ``/stats/today`` and ``/metrics``.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import Any

import pytest
from classifier_testdata import API_KEY, make_image
from fastapi.testclient import TestClient
from foresight.contract.classifier import ClassifierConfig
from foresight.serving.classifier import create_app
from foresight.serving.classifier.backends.base import BackendResult, ClassifierBackend, OnCall
from foresight.serving.classifier.images import CheckedImage
from PIL import Image
from prometheus_client import CollectorRegistry

from tests.servers.dashscope_standin import DashScopeStandIn

pytestmark = pytest.mark.integration
ENV = {"DASHSCOPE_API_KEY": API_KEY}


def _truncated(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.effect_noise((160, 120), 60).convert("RGB").save(out, format=fmt)
    return out.getvalue()[: len(out.getvalue()) * 2 // 3]


def _shape(r: Any, status: int, code: str, caplog: pytest.LogCaptureFixture) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) <= {"error", "message", "request_id", "detail"}
    assert body["error"] == code and body["message"] and body["request_id"]
    assert r.headers["X-Request-Id"] == body["request_id"]
    assert f"request_id={body['request_id']}" in caplog.text


def test_every_error_has_one_shape_and_is_counted_once(
    standin: DashScopeStandIn,
    dashscope_config: Callable[..., ClassifierConfig],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    registry = CollectorRegistry()
    cfg = dashscope_config(limits={"max_upload_bytes": 100_000, "max_pixels": 1_000_000})
    with TestClient(create_app(cfg, registry=registry, environ=ENV), raise_server_exceptions=False) as client:
        _shape(client.get("/no/such/path"), 404, "not_found", caplog)
        _shape(client.get("/api/v1/classify"), 405, "method_not_allowed", caplog)
        _shape(
            client.post("/api/v1/classify/check-cache", json={"sha256": "xyz"}), 422, "bad_request", caplog
        )
        _shape(client.post("/api/v1/classify/check-cache", content=b"{"), 422, "bad_request", caplog)
        _shape(client.post("/api/v1/feedback", json={"request_id": "r"}), 422, "bad_request", caplog)
        files: Callable[[bytes], dict[str, Any]] = lambda b: {"file": ("x", b, "image/png")}  # noqa: E731
        big = make_image(1, size=(400, 400), fmt="BMP")
        _shape(client.post("/api/v1/classify", files=files(big)), 413, "upload_too_large", caplog)
        _shape(
            client.post("/api/v1/classify", files=files(b"GIF89a nope")),
            415,
            "unsupported_media_type",
            caplog,
        )
        for fmt in ("JPEG", "GIF", "BMP"):  # pass the header check, fail while decoded for the backend
            r = client.post("/api/v1/classify", files=files(_truncated(fmt)))
            _shape(r, 415, "unsupported_media_type", caplog)
            assert "corrupt or truncated" in r.json()["message"]
        _shape(client.post("/api/v1/classify", content=b"raw", headers={"content-type": "text/plain"}),
               415, "unsupported_media_type", caplog)  # fmt: skip
        standin.fail_next(500, times=3)
        _shape(client.post("/api/v1/classify", files=files(make_image(2))), 502, "upstream_error", caplog)
        assert standin.calls == 3  # the truncated images never reached the backend
        stats = client.get("/api/v1/stats/today").json()
    # 405, 413, 415 x 5 and two 422 on check-cache: rejected; the 502 is a failure. One count each,
    # by the endpoint's path (the 404 and the feedback are not classify / check-cache requests).
    assert stats["rejected"] == 9 and stats["llm_failures"] == 1 and stats["errors"] == 10
    assert stats["requests"] == 10 and stats["classify_requests"] == 8
    value = lambda **labels: registry.get_sample_value("foresight_classifier_requests_total", labels) or 0  # noqa: E731
    assert value(endpoint="classify", status="415", variant="") == 5
    assert value(endpoint="classify", status="413", variant="") == 1
    assert value(endpoint="check-cache", status="422", variant="") == 2
    assert value(endpoint="other", status="404", variant="") == 1
    assert value(endpoint="classify", status="405", variant="") == 1


class Broken(ClassifierBackend[bytes]):
    name = "broken"

    def prepare(self, image: CheckedImage) -> bytes:
        return image.data

    def classify(self, prepared: bytes, *, deadline: float, on_call: OnCall) -> BackendResult:
        raise RuntimeError("a bug")


def test_an_unexpected_error_is_a_500_of_the_same_shape(
    dashscope_config: Callable[..., ClassifierConfig], caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(dashscope_config(), backend=Broken(), environ=ENV)
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post("/api/v1/classify", files={"file": ("x", make_image(3), "image/png")})
        _shape(r, 500, "internal_error", caplog)
        assert "a bug" not in r.text  # no internals to the client; the traceback is in the log
        assert "RuntimeError: a bug" in caplog.text
        assert client.get("/api/v1/stats/today").json()["errors"] == 1
