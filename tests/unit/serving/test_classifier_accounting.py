"""``/stats/today`` and ``/metrics`` agree: one mixed sequence of requests, both views, every definition.

The real app and sqlite store with a scripted backend (answers, low-confidence guesses, a failure
after three attempts, a call held open until four identical requests wait for it). The numbers
are checked against the definitions (accounting.py) by hand, and the two views against each other.
"""

from __future__ import annotations

import io
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from foresight.contract.classifier import ClassifierConfig
from foresight.serving.classifier import create_app
from foresight.serving.classifier.backends.base import BackendResult, ClassifierBackend, OnCall
from foresight.serving.classifier.errors import UpstreamError
from foresight.serving.classifier.images import CheckedImage, decode_rgb
from foresight.serving.classifier.service import ClassifierService, sha256_hex
from foresight.serving.classifier.store.base import cache_key
from PIL import Image
from prometheus_client import CollectorRegistry

PRICE = 0.5


def image(seed: int, fmt: str = "PNG") -> bytes:
    rnd = random.Random(seed)
    img = Image.new("RGB", (40, 30))
    img.putdata([(rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)) for _ in range(1200)])
    out = io.BytesIO()
    img.save(out, format=fmt)
    return out.getvalue()


class Scripted(ClassifierBackend[CheckedImage]):
    """Answers by image: ``script[sha] = (category, certain)`` or ``("fail", attempts)``."""

    name = "scripted"

    def __init__(self) -> None:
        self.script: dict[str, tuple[str, Any]] = {}
        self.calls = 0
        self.gate: threading.Event | None = None

    def prepare(self, image: CheckedImage) -> CheckedImage:
        decode_rgb(image)  # what a real backend does first: a corrupt image fails here
        return image

    def classify(self, prepared: CheckedImage, *, deadline: float, on_call: OnCall) -> BackendResult:
        if self.gate is not None:
            assert self.gate.wait(30)
        what, arg = self.script[sha256_hex(prepared.data)]
        self.calls += 1
        if what == "fail":
            for _ in range(arg):
                on_call(False)
            raise UpstreamError("scripted failure", attempts=arg)
        on_call(True)
        return BackendResult(what, 1.0 if arg else 0.5, certain=arg)


def metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def total(registry: CollectorRegistry, name: str, **match: str) -> float:
    """Sum of a metric's samples whose labels include ``match``."""
    out = 0.0
    for family in registry.collect():
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in match.items()):
                out += s.value
    return out


def _post(client: TestClient, data: bytes, **headers: str) -> Any:
    return client.post("/api/v1/classify", files={"file": ("x", data, "image/png")}, headers=headers)


def _wait(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_stats_and_metrics_count_one_mixed_sequence_alike(tmp_path: Path) -> None:
    backend = Scripted()
    registry = CollectorRegistry()
    config = ClassifierConfig.model_validate(
        {"backend": {"price_per_call": PRICE}, "cache": {"sqlite_path": str(tmp_path / "c.db")}}
    )
    app = create_app(config, backend=backend, registry=registry, environ={})
    a, c, d, e = image(1), image(2), image(3), image(4)
    backend.script = {
        sha256_hex(a): ("pets", True),
        sha256_hex(c): ("foods", False),  # the model named several categories: a guess
        sha256_hex(d): ("fail", 3),
        sha256_hex(e): ("screenshot", True),
    }
    truncated = image(5, "JPEG")[:300]  # passes the header check, fails to decode
    with TestClient(app) as client:
        service: ClassifierService = client.app.state.classifier.service  # type: ignore[attr-defined]
        first = _post(client, a)
        assert first.status_code == 200 and first.json()["cached"] is False
        assert _post(client, a).json()["cached"] is True
        hit = client.post("/api/v1/classify/check-cache", json={"sha256": sha256_hex(a)})
        assert hit.json()["hit"] is True
        miss = client.post("/api/v1/classify/check-cache", json={"sha256": "0" * 64})
        assert miss.json()["hit"] is False
        assert _post(client, b"%PDF-1.4 not an image").status_code == 415
        late = _post(client, truncated)
        assert late.status_code == 415 and "corrupt or truncated" in late.json()["message"]
        guess = _post(client, c)
        assert guess.status_code == 200 and guess.json()["low_confidence"] is True
        assert _post(client, c).json()["cached"] is False  # a guess is never cached: asked again
        assert _post(client, d).status_code == 502

        # Four identical requests at once: one backend call, three coalesced.
        backend.gate = threading.Event()
        results: list[Any] = []
        threads = [threading.Thread(target=lambda: results.append(_post(client, e))) for _ in range(4)]
        for t in threads:
            t.start()
        _wait(lambda: service.flights.waiting(sha256_hex(e)) == 4, "four requests on one flight")
        backend.gate.set()
        for t in threads:
            t.join()
        assert [r.status_code for r in results] == [200] * 4
        backend.gate = None

        fb = client.post("/api/v1/feedback", json={"request_id": first.json()["request_id"], "label": "pets"})
        assert fb.status_code == 200 and fb.json()["correct"] is True
        fb = client.post("/api/v1/feedback", json={"request_id": guess.json()["request_id"], "label": "pets"})
        assert fb.status_code == 200 and fb.json()["correct"] is False

        stats = client.get("/api/v1/stats/today").json()
        client.get("/metrics")  # flushes and serves the same events
    assert backend.calls == 1 + 2 + 1 + 1  # a, c twice, d (three attempts inside), e once

    # The definitions, by hand.
    expected = {
        "requests": 13,  # 11 classify + 2 check-cache
        "classify_requests": 11,
        "check_cache_requests": 2,
        "cache_hits": 2,
        "cache_misses": 8,  # a, c, c, d and the four e
        "check_cache_misses": 1,
        "coalesced": 3,
        "uncertain_answers": 2,
        "llm_failures": 1,
        "rejected": 2,
        "errors": 3,
        "llm_calls": 7,  # a, c, c, three attempts for d, e
        "llm_calls_billed": 4,
        "llm_calls_saved": 5,  # two hits, three coalesced
        "feedback_correct": 1,
        "feedback_incorrect": 1,
    }
    assert {k: stats[k] for k in expected} == expected
    assert stats["estimated_cost_spent"] == pytest.approx(4 * PRICE)
    assert stats["estimated_cost_saved"] == pytest.approx(5 * PRICE)
    assert stats["hit_rate"] == pytest.approx(2 / 10)
    assert stats["accuracy"] == pytest.approx(0.5)
    assert stats["categories"] == {"pets": 3, "foods": 2, "screenshot": 4}

    # /metrics, from the same events.
    r = registry
    api = sum(
        total(r, "foresight_classifier_requests_total", endpoint=ep) for ep in ("classify", "check-cache")
    )
    assert api == stats["requests"]
    assert total(r, "foresight_classifier_requests_total", endpoint="classify") == stats["classify_requests"]
    assert total(r, "foresight_classifier_requests_total", status="415") == stats["rejected"]
    errors = sum(
        total(r, "foresight_classifier_requests_total", endpoint=ep, status=st)
        for ep in ("classify", "check-cache")
        for st in ("415", "502")
    )
    assert errors == stats["errors"]
    assert total(r, "foresight_classifier_cache_hits_total") == stats["cache_hits"]
    assert metric(r, "foresight_classifier_cache_misses_total", endpoint="classify", variant="") == 8
    assert metric(r, "foresight_classifier_cache_misses_total", endpoint="check-cache", variant="") == 1
    assert metric(r, "foresight_classifier_coalesced_requests_total", variant="") == stats["coalesced"]
    assert metric(r, "foresight_classifier_uncertain_answers_total", variant="") == stats["uncertain_answers"]
    labels = {"backend": "scripted", "variant": ""}
    assert metric(r, "foresight_classifier_backend_failures_total", **labels) == stats["llm_failures"]
    assert metric(r, "foresight_classifier_backend_calls_total", **labels) == stats["llm_calls"]
    assert metric(r, "foresight_classifier_backend_calls_billed_total", **labels) == stats["llm_calls_billed"]
    assert metric(r, "foresight_classifier_calls_saved_total", variant="") == stats["llm_calls_saved"]
    assert metric(r, "foresight_classifier_cost_spent_total", variant="") == stats["estimated_cost_spent"]
    assert metric(r, "foresight_classifier_cost_saved_total", variant="") == stats["estimated_cost_saved"]
    for category, n in stats["categories"].items():
        assert metric(r, "foresight_classifier_classifications_total", category=category, variant="") == n
    assert metric(r, "foresight_classifier_feedback_total", variant="", correct="true") == 1
    assert metric(r, "foresight_classifier_feedback_total", variant="", correct="false") == 1
    # Only the real answers were cached: a's and e's, never c's guess or d's failure.
    store = service.store
    assert {k for k in (sha256_hex(x) for x in (a, c, d, e)) if store.get(cache_key("", k))} == {
        sha256_hex(a),
        sha256_hex(e),
    }
