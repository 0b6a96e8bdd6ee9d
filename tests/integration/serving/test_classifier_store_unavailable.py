"""A broken sqlite store under the running classifier: the documented 503 with a message, never a 500.

The database's tables are dropped by another connection while the app runs (what a replaced or
damaged file looks like to open connections). Every endpoint that needs the store answers 503
``store_unavailable`` naming the file and what to check; an image already in the in-process LRU
is still answered. Schemathesis then checks every response of the broken service against the
OpenAPI spec.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from typing import Any

import hypothesis
import pytest
import schemathesis
from classifier_testdata import API_KEY, make_image
from fastapi.testclient import TestClient
from foresight.contract.classifier import ClassifierConfig
from foresight.serving.classifier import create_app
from hypothesis import HealthCheck
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.servers.dashscope_standin import DashScopeStandIn

pytestmark = pytest.mark.integration
ENV = {"DASHSCOPE_API_KEY": API_KEY}


def _break(path: str) -> None:
    conn = sqlite3.connect(path)
    conn.executescript("DROP TABLE results; DROP TABLE request_log;")
    conn.close()


def _assert_store_503(r: Any, path: str) -> None:
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["error"] == "store_unavailable" and body["request_id"]
    assert path in body["message"] and "no such table" in body["message"]
    assert "check that its volume is mounted, writable and not full" in body["message"]


def test_a_broken_sqlite_store_answers_503_with_what_to_check(
    standin: DashScopeStandIn, dashscope_config: Callable[..., ClassifierConfig]
) -> None:
    cfg = dashscope_config()
    path = cfg.cache.sqlite_path
    known, new = make_image(11), make_image(12)
    with TestClient(create_app(cfg, environ=ENV)) as client:
        assert client.post("/api/v1/classify", files={"file": ("a", known, "image/png")}).status_code == 200
        _break(path)
        _assert_store_503(client.post("/api/v1/classify", files={"file": ("b", new, "image/png")}), path)
        sha = hashlib.sha256(new).hexdigest()
        _assert_store_503(client.post("/api/v1/classify/check-cache", json={"sha256": sha}), path)
        _assert_store_503(client.get("/api/v1/stats/today"), path)
        _assert_store_503(client.get("/api/v1/health"), path)  # readiness takes the pod out
        # The in-process LRU still answers an image it holds, without the store.
        r = client.post("/api/v1/classify", files={"file": ("a", known, "image/png")})
        assert r.status_code == 200 and r.json()["cached"] is True
    assert standin.calls == 1  # the new image never reached the backend


def test_a_broken_store_keeps_to_the_openapi_spec(
    standin: DashScopeStandIn, dashscope_config: Callable[..., ClassifierConfig]
) -> None:
    cfg = dashscope_config(limits={"max_upload_bytes": 64 * 1024})
    app = create_app(cfg, environ={"DASHSCOPE_API_KEY": "sk-fuzz"})
    _break(cfg.cache.sqlite_path)  # before the first request: every store call fails
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    statuses: dict[str, set[int]] = {}
    for operation in operations:

        @hypothesis.given(case=operation.as_strategy())
        @hypothesis.settings(
            max_examples=15,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Any) -> None:
            # A 503 is the point here, so "no 5xx" is off; status codes, bodies and content types are
            # still checked against the spec (an undocumented 500 fails). Random schema-valid
            # uploads are not images and are refused before the store is asked.
            excluded = [not_a_server_error]
            if case.operation.label == "POST /api/v1/classify":
                excluded.append(positive_data_acceptance)
            response = case.call_and_validate(excluded_checks=excluded)
            statuses.setdefault(case.operation.label, set()).add(response.status_code)
            assert response.status_code != 500, response.text

        fuzz()
    for label in ("POST /api/v1/classify/check-cache", "GET /api/v1/stats/today", "GET /api/v1/health"):
        assert 503 in statuses[label], (label, statuses)
