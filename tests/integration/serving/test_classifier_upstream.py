"""What a misbehaving upstream costs, through the real dashscope SDK against the local stand-in.

Identical concurrent requests share one attempt sequence, failing or not; a request has a deadline
across all retries; ``Retry-After`` sets the backoff and reaches the client on 429 / 503; the SDK's
own per-attempt tracebacks stay out of the log; guesses are answered but never cached.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from classifier_testdata import API_KEY, make_image
from fastapi.testclient import TestClient
from foresight.contract.classifier import ClassifierConfig
from foresight.serving.classifier import create_app
from foresight.serving.classifier.service import ClassifierService

from tests.servers.dashscope_standin import DashScopeStandIn

pytestmark = pytest.mark.integration
ENV = {"DASHSCOPE_API_KEY": API_KEY}
N = 8


def _config(
    build: Callable[..., ClassifierConfig], standin: DashScopeStandIn, **dashscope: Any
) -> ClassifierConfig:
    settings = {"base_url": standin.base_url, "max_retries": 2, "backoff_seconds": 0.01, "timeout_seconds": 5}
    deadline = dashscope.pop("deadline_seconds", 20)
    settings.update(dashscope)
    return build(
        backend={"type": "dashscope", "price_per_call": 0.01, "dashscope": settings},
        deadline_seconds=deadline,
    )


def _post(client: TestClient, data: bytes) -> Any:
    return client.post("/api/v1/classify", files={"file": ("a.png", data, "image/png")})


def _together(client: TestClient, standin: DashScopeStandIn, data: bytes) -> list[Any]:
    """N identical requests at once: the stand-in holds its answer until all N wait on one call."""
    service: ClassifierService = client.app.state.classifier.service  # type: ignore[attr-defined]
    key = hashlib.sha256(data).hexdigest()
    standin.hold = threading.Event()
    out: list[Any] = []
    threads = [threading.Thread(target=lambda: out.append(_post(client, data))) for _ in range(N)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while service.flights.waiting(key) < N:
        assert time.monotonic() < deadline, f"only {service.flights.waiting(key)} of {N} requests waiting"
        time.sleep(0.01)
    standin.hold.set()
    for t in threads:
        t.join(30)
    standin.hold = None
    return out


def test_identical_concurrent_requests_share_one_attempt_sequence_failing_or_not(
    standin: DashScopeStandIn, dashscope_config: Callable[..., ClassifierConfig]
) -> None:
    with TestClient(create_app(_config(dashscope_config, standin), environ=ENV)) as client:
        standin.fail_always(500)
        failed = _together(client, standin, make_image(1))
        assert standin.calls == 3  # retries + 1, for all N requests together
        assert [r.status_code for r in failed] == [502] * N
        assert {r.json()["error"] for r in failed} == {"upstream_error"}
        assert {r.json()["detail"]["attempts"] for r in failed} == {3}
        assert len({r.json()["request_id"] for r in failed}) == N  # one error, each with its own id

        standin.fail_always(None)
        standin.reset()
        ok = _together(client, standin, make_image(2))
        assert standin.calls == 1
        assert [(r.status_code, r.json()["category"], r.json()["cached"]) for r in ok] == [
            (200, "pets", False)
        ] * N
        stats = client.get("/api/v1/stats/today").json()
    assert stats["llm_failures"] == N and stats["coalesced"] == 2 * (N - 1)
    assert stats["llm_calls"] == 4 and stats["llm_calls_billed"] == 1
    assert stats["estimated_cost_spent"] == pytest.approx(0.01)


def test_a_hanging_upstream_answers_502_within_the_deadline(
    standin: DashScopeStandIn, dashscope_config: Callable[..., ClassifierConfig]
) -> None:
    standin.delay = 30  # never answers in time; the SDK's own timeout would be 300 s
    config = _config(dashscope_config, standin, deadline_seconds=1.5, timeout_seconds=30, max_retries=3)
    with TestClient(create_app(config, environ=ENV)) as client:
        start = time.monotonic()
        r = _post(client, make_image(3))
        took = time.monotonic() - start
    assert r.status_code == 502 and r.json()["error"] == "upstream_timeout", r.text
    assert took < 1.5 + 1.0
    assert standin.calls == 1  # no retry is started past the deadline


def test_retry_after_sets_the_backoff_and_reaches_the_client(
    standin: DashScopeStandIn, dashscope_config: Callable[..., ClassifierConfig]
) -> None:
    config = _config(dashscope_config, standin, deadline_seconds=5, max_retries=1)
    with TestClient(create_app(config, environ=ENV)) as client:
        # A 429 asking for 1 s, then an answer: the retry waits the upstream's second, not 10 ms.
        standin.fail_next(429, retry_after=1)
        start = time.monotonic()
        r = _post(client, make_image(4))
        assert r.status_code == 200 and standin.calls == 2
        assert time.monotonic() - start >= 1.0

        # Throttled through every retry: 429 to the client, with the upstream's Retry-After.
        standin.reset()
        standin.fail_always(429, retry_after=1)
        r = _post(client, make_image(5))
        assert r.status_code == 429 and r.json()["error"] == "upstream_throttled"
        assert r.headers["Retry-After"] == "1" and standin.calls == 2

        # Unavailable for longer than the deadline leaves: no pointless wait, 503 with its Retry-After.
        standin.reset()
        standin.fail_always(503, retry_after=120)
        start = time.monotonic()
        r = _post(client, make_image(6))
        assert r.status_code == 503 and r.json()["error"] == "upstream_unavailable"
        assert r.headers["Retry-After"] == "120" and standin.calls == 1
        assert time.monotonic() - start < 2
        # Nothing of it was cached.
        sha = hashlib.sha256(make_image(6)).hexdigest()
        assert client.post("/api/v1/classify/check-cache", json={"sha256": sha}).json()["hit"] is False


def test_the_sdks_tracebacks_do_not_flood_the_log(
    standin: DashScopeStandIn,
    dashscope_config: Callable[..., ClassifierConfig],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    standin.delay = 1.0
    config = _config(dashscope_config, standin, timeout_seconds=0.2, max_retries=2)
    with TestClient(create_app(config, environ=ENV)) as client:
        r = _post(client, make_image(7))
    assert r.status_code == 502 and r.json()["detail"]["upstream_code"] == "ReadTimeout"
    assert standin.calls == 3
    assert not [rec for rec in caplog.records if rec.name.startswith("dashscope")]
    assert "Traceback" not in caplog.text and not any(rec.exc_info for rec in caplog.records)
    ours = [rec.getMessage() for rec in caplog.records if rec.levelno >= logging.WARNING]
    assert len(ours) == 4  # two "retrying" lines, the failure, the request's line with its id
    assert r.json()["request_id"] in ours[-1]


def test_a_guess_is_answered_with_low_confidence_and_never_cached(
    standin: DashScopeStandIn, dashscope_config: Callable[..., ClassifierConfig]
) -> None:
    image = make_image(8)
    with TestClient(create_app(_config(dashscope_config, standin), environ=ENV)) as client:
        standin.answer = "It could be pets or food."
        for _ in range(2):
            r = _post(client, image)
            assert r.status_code == 200 and r.json()["low_confidence"] is True and r.json()["cached"] is False
            assert r.json()["confidence"] <= 0.5
        assert standin.calls == 2  # asked again: a guess is not a result
        sha = hashlib.sha256(image).hexdigest()
        assert client.post("/api/v1/classify/check-cache", json={"sha256": sha}).json()["hit"] is False
        standin.answer = "这不是宠物，是美食"  # a negation and one real answer
        r = _post(client, image)
        assert (r.json()["category"], r.json()["low_confidence"]) == ("foods", False)
        r = _post(client, image)
        assert r.json()["cached"] is True and standin.calls == 3
        stats = client.get("/api/v1/stats/today").json()
    assert stats["uncertain_answers"] == 2 and stats["llm_calls_billed"] == 3
