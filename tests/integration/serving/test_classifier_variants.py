"""Serving several variants from one app (issue 14): two real ONNX models and a routing file.

The two models disagree on purpose (red is ``foods`` to the control, ``pets`` to the candidate),
so every answer shows which variant's model produced it. Routing goes through the HTTP API with
the stickiness header; the routing file is rewritten while the app serves.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from classifier_onnx_models import colour_model, solid
from fastapi.testclient import TestClient
from foresight.contract.classifier import ClassifierConfig
from foresight.experiment.routing import VariantRouter
from foresight.serving.classifier import create_app
from prometheus_client import CollectorRegistry

from tests.servers.dashscope_standin import DashScopeStandIn

pytestmark = pytest.mark.integration

LABELS = ["foods", "pets", "other"]
CATEGORIES = [
    {"key": "foods", "zh": "美食", "en": "Food"},
    {"key": "pets", "zh": "宠物", "en": "Pets"},
    {"key": "other", "zh": "其他", "en": "Other"},
]
RED, BLUE = (220, 20, 20), (20, 20, 220)
SALT = "experiment-uid-1"
EVEN = {"control": 50, "candidate": 50}


def routing(weights: dict[str, int], generation: int = 1) -> dict[str, Any]:
    return {
        "experiment": "photos/v2-vs-v1",
        "generation": generation,
        "salt": SALT,
        "stickinessHeader": "X-Client-Id",
        "control": "control",
        "variants": [{"name": n, "weight": w} for n, w in weights.items()],
        "updated": "2026-01-01T00:00:00Z",
    }


def write(path: Path, content: Any) -> None:
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    st = path.stat()  # a new mtime even within one clock tick, as a kubelet's swap gives
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def client_of(variant: str, weights: dict[str, int] | None = None) -> str:
    """A client id the split sends to ``variant``."""
    router = VariantRouter(weights or EVEN, salt=SALT)
    return next(f"client-{i}" for i in range(1000) if router.choose(f"client-{i}") == variant)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("models")
    # red, green, blue -> output index of LABELS
    return colour_model(d / "v1.onnx", (0, 2, 1)), colour_model(d / "v2.onnx", (1, 2, 0))


@pytest.fixture
def serve(models: tuple[Path, Path], tmp_path: Path) -> Iterator[Callable[..., tuple[TestClient, Path]]]:
    clients: list[TestClient] = []

    def start(weights: dict[str, int] | None = EVEN, **kw: Any) -> tuple[TestClient, Path]:
        path = tmp_path / "routing.json"
        if weights is not None:
            write(path, routing(weights))
        config = ClassifierConfig.model_validate(
            {
                "categories": CATEGORIES,
                "variants": [
                    {
                        "name": name,
                        "backend": {"type": "onnx", "onnx": {"model_path": str(m), "labels": LABELS}},
                    }
                    for name, m in zip(("control", "candidate"), models, strict=True)
                ],
                "routing": {"file": str(path), "poll_seconds": 0.05},
                "cache": {"sqlite_path": str(tmp_path / "c.db")},
            }
        )
        client = TestClient(create_app(config, environ={}, **kw))
        client.__enter__()
        clients.append(client)
        return client, path

    yield start
    for client in clients:
        client.__exit__(None, None, None)


def classify(client: TestClient, image: bytes, who: str) -> Any:
    r = client.post(
        "/api/v1/classify", files={"file": ("a.png", image, "image/png")}, headers={"X-Client-Id": who}
    )
    assert r.status_code == 200, r.text
    assert r.headers["X-Foresight-Variant"] == r.json()["variant"]
    return r


def test_a_client_sticks_to_its_variant_and_each_answer_names_it(serve: Callable[..., Any]) -> None:
    client, _ = serve()
    seen: dict[str, set[str]] = {}
    for i in range(30):
        who = f"client-{i}"
        for n in range(3):
            r = classify(client, solid(RED, noise=100 * i + n), who)
            variant = r.json()["variant"]
            seen.setdefault(who, set()).add(variant)
            assert r.json()["category"] == {"control": "foods", "candidate": "pets"}[variant]
    assert all(len(v) == 1 for v in seen.values())  # sticky
    assert set().union(*seen.values()) == {"control", "candidate"}  # and split
    assert client.get("/api/v1/routing").json() == {
        "variants": ["control", "candidate"],
        "source": "file",
        "weights": {"control": 50, "candidate": 50},
        "experiment": "photos/v2-vs-v1",
        "generation": 1,
        "stickiness_header": "X-Client-Id",
    }


def test_each_variant_keeps_its_own_cache(serve: Callable[..., Any]) -> None:
    client, _ = serve()
    image, blue = solid(RED, noise=1), solid(BLUE, noise=2)
    a, b = client_of("control"), client_of("candidate")
    first = {who: classify(client, image, who).json() for who in (a, b)}
    assert (first[a]["category"], first[a]["cached"]) == ("foods", False)
    assert (first[b]["category"], first[b]["cached"]) == ("pets", False)  # not the control's answer
    again = {who: classify(client, image, who).json() for who in (a, b)}
    assert (again[a]["category"], again[a]["cached"]) == ("foods", True)
    assert (again[b]["category"], again[b]["cached"]) == ("pets", True)
    classify(client, blue, a)  # only the control has seen this one (its answer: pets)
    expected = {(a, image): "foods", (b, image): "pets", (a, blue): "pets", (b, blue): None}
    for (who, data), category in expected.items():
        r = client.post(
            "/api/v1/classify/check-cache",
            json={"sha256": hashlib.sha256(data).hexdigest()},
            headers={"X-Client-Id": who},
        )
        assert r.headers["X-Foresight-Variant"] == r.json()["variant"]
        assert r.json()["hit"] is (category is not None)
        assert (r.json()["result"] or {}).get("category") == category


def test_feedback_joins_the_variant_that_answered_and_counts_once(serve: Callable[..., Any]) -> None:
    registry = CollectorRegistry()
    client, _ = serve(registry=registry)
    a, b = client_of("control"), client_of("candidate")
    by_control = classify(client, solid(RED, noise=3), a).json()  # foods
    by_candidate = classify(client, solid(RED, noise=4), b).json()  # pets; the image is food
    r = client.post("/api/v1/feedback", json={"request_id": by_candidate["request_id"], "label": "foods"})
    assert r.status_code == 200
    assert r.json() == {
        "request_id": by_candidate["request_id"],
        "variant": "candidate",
        "category": "pets",
        "label": "foods",
        "correct": False,
        "recorded": True,
    }
    again = client.post("/api/v1/feedback", json={"request_id": by_candidate["request_id"], "label": "foods"})
    assert again.status_code == 200 and again.json()["recorded"] is False  # counted once
    other = client.post("/api/v1/feedback", json={"request_id": by_candidate["request_id"], "label": "pets"})
    assert other.status_code == 409 and other.json()["error"] == "feedback_conflict"
    assert other.json()["detail"]["label"] == "foods"
    ok = client.post("/api/v1/feedback", json={"request_id": by_control["request_id"], "label": "foods"})
    assert ok.json()["correct"] is True and ok.json()["variant"] == "control"
    unknown = client.post("/api/v1/feedback", json={"request_id": "f" * 32, "label": "foods"})
    assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_request"
    bad = client.post("/api/v1/feedback", json={"request_id": by_control["request_id"], "label": "cats"})
    assert bad.status_code == 422 and "foods" in bad.json()["message"]

    stats = client.get("/api/v1/stats/today").json()
    assert stats["variants"]["candidate"]["feedback_incorrect"] == 1
    assert stats["variants"]["candidate"]["accuracy"] == 0.0
    assert stats["variants"]["control"]["feedback_correct"] == 1
    assert (stats["feedback_correct"], stats["feedback_incorrect"]) == (1, 1)
    client.get("/metrics")
    value = lambda **labels: registry.get_sample_value("foresight_classifier_feedback_total", labels)  # noqa: E731
    assert value(variant="candidate", correct="false") == 1
    assert value(variant="control", correct="true") == 1
    assert value(variant="control", correct="false") == 0  # created at start: "no errors" reads 0
    requests = lambda v: registry.get_sample_value(  # noqa: E731
        "foresight_classifier_requests_total", {"endpoint": "classify", "status": "200", "variant": v}
    )
    assert (requests("control"), requests("candidate")) == (1, 1)
    assert registry.get_sample_value(
        "foresight_classifier_request_seconds_squared_total", {"endpoint": "classify", "variant": "candidate"}
    )


def _wait_for(client: TestClient, who: str, variant: str, noise: int) -> None:
    deadline = time.monotonic() + 10
    while True:
        r = classify(client, solid(RED, noise=noise), who)
        if r.json()["variant"] == variant:
            return
        assert time.monotonic() < deadline, f"{who} still on {r.json()['variant']}"
        time.sleep(0.05)
        noise += 1


def test_a_new_split_applies_without_restart_and_a_broken_file_serves_the_control(
    serve: Callable[..., Any],
) -> None:
    client, path = serve({"control": 100, "candidate": 0})
    who = "client-x"
    assert classify(client, solid(RED, noise=10), who).json()["variant"] == "control"
    write(path, routing({"control": 0, "candidate": 100}, generation=2))
    _wait_for(client, who, "candidate", 1000)
    assert client.get("/api/v1/routing").json()["generation"] == 2
    write(path, "{ this is not json")
    _wait_for(client, who, "control", 2000)
    assert client.get("/api/v1/routing").json()["source"] == "default"
    path.unlink()
    write(path, routing({"control": 0, "candidate": 100}, generation=3))
    _wait_for(client, who, "candidate", 3000)


def test_without_a_routing_file_every_request_goes_to_the_control(serve: Callable[..., Any]) -> None:
    client, _ = serve(None)
    variants = {classify(client, solid(RED, noise=20 + i), f"c{i}").json()["variant"] for i in range(20)}
    assert variants == {"control"}


def test_dashscope_variants_call_their_own_model_with_their_own_prompt(
    standin: DashScopeStandIn, tmp_path: Path
) -> None:
    path = tmp_path / "routing.json"
    write(path, routing({"control": 50, "candidate": 50}))
    standin.answers = {"qwen-vl-max": "foods"}
    settings = {"base_url": standin.base_url, "max_retries": 0}
    config = ClassifierConfig.model_validate(
        {
            "variants": [
                {"name": "control", "backend": {"dashscope": settings}},
                {
                    "name": "candidate",
                    "backend": {"dashscope": {**settings, "model": "qwen-vl-max"}},
                    "prompt": "Answer with one of {categories} and nothing else.",
                },
            ],
            "routing": {"file": str(path)},
            "cache": {"sqlite_path": str(tmp_path / "c.db")},
        }
    )
    with TestClient(create_app(config, environ={"DASHSCOPE_API_KEY": "sk-test"})) as client:
        a = classify(client, solid(RED, noise=1), client_of("control")).json()
        b = classify(client, solid(RED, noise=1), client_of("candidate")).json()
    assert (a["variant"], a["category"], b["variant"], b["category"]) == (
        "control",
        "pets",
        "candidate",
        "foods",
    )
    sent = {r.body["model"]: r.texts()[0] for r in standin.requests}
    assert sent["qwen-vl-plus"].startswith("Classify this image")
    assert sent["qwen-vl-max"].startswith("Answer with one of social_activities (")
