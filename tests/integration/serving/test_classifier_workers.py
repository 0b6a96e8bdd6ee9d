"""Several worker processes of one pod: one backend call per image across them, metrics added up.

Two app instances on one sqlite file stand for two workers (``workers: 2`` turns on the flights
shared through the store); then the real ``foresight serve classifier`` with two uvicorn worker
processes is checked for what a scrape and the stats see.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from classifier_testdata import API_KEY, make_image
from fastapi.testclient import TestClient
from foresight.contract.classifier import ClassifierConfig
from foresight.serving.classifier import create_app
from foresight.serving.classifier.service import ClassifierService
from prometheus_client.parser import text_string_to_metric_families

from tests.servers.dashscope_standin import DashScopeStandIn

pytestmark = pytest.mark.integration
ENV = {"DASHSCOPE_API_KEY": API_KEY}
FORESIGHT = Path(sys.executable).with_name("foresight")


def _post(client: TestClient, data: bytes, out: list[Any]) -> None:
    out.append(client.post("/api/v1/classify", files={"file": ("a.png", data, "image/png")}))


def _service(client: TestClient) -> ClassifierService:
    service: ClassifierService = client.app.state.classifier.service  # type: ignore[attr-defined]
    return service


def _wait(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


@pytest.mark.parametrize("fails", [False, True])
def test_two_workers_share_one_backend_call_for_an_image(
    standin: DashScopeStandIn, dashscope_config: Callable[..., ClassifierConfig], fails: bool
) -> None:
    config = dashscope_config(workers=2)  # both on the same sqlite file
    image = make_image(1)
    key = hashlib.sha256(image).hexdigest()
    with TestClient(create_app(config, environ=ENV)) as a, TestClient(create_app(config, environ=ENV)) as b:
        if fails:
            standin.fail_always(500)
        standin.hold = threading.Event()
        out: list[Any] = []
        first = threading.Thread(target=_post, args=(a, image, out))
        first.start()
        _wait(lambda: standin.calls == 1, "worker a calls the backend")
        second = threading.Thread(target=_post, args=(b, image, out))
        second.start()
        _wait(lambda: _service(b).flights.waiting(key) == 1, "worker b waits for a's call")
        time.sleep(0.2)  # b polls the store meanwhile, and does not call
        assert standin.calls == 1
        standin.hold.set()
        first.join(30)
        second.join(30)
    if fails:
        assert standin.calls == 3  # retries + 1 for both workers' requests together
        assert [r.status_code for r in out] == [502, 502]
        assert {r.json()["error"] for r in out} == {"upstream_error"}
    else:
        assert standin.calls == 1
        assert sorted(r.json()["cached"] for r in out) == [False, False]
        assert {r.json()["category"] for r in out} == {"pets"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def test_the_server_with_two_worker_processes_counts_every_request_once(
    standin: DashScopeStandIn, tmp_path: Path
) -> None:
    port = _free_port()
    config = {
        "host": "127.0.0.1",
        "port": port,
        "workers": 2,
        "backend": {"dashscope": {"base_url": standin.base_url, "max_retries": 0}},
        "cache": {"sqlite_path": str(tmp_path / "c.db")},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(FORESIGHT), "serve", "classifier", "--config", str(path)],
            env={**os.environ, **ENV},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if requests.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        image = make_image(2)
        sha = hashlib.sha256(image).hexdigest()
        r = requests.post(f"{url}/api/v1/classify", files={"file": ("a.png", image, "image/png")}, timeout=30)
        assert r.status_code == 200 and r.json()["cached"] is False
        for _ in range(40):  # new connections: the kernel spreads them over both workers
            requests.post(f"{url}/api/v1/classify/check-cache", json={"sha256": sha}, timeout=10)
        time.sleep(1)  # every worker's ledger flushes (0.25 s)
        scrapes = [requests.get(f"{url}/metrics", timeout=10).text for _ in range(6)]
        stats = requests.get(f"{url}/api/v1/stats/today", timeout=10).json()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    assert "serving with 2 worker processes" in log.read_text()
    assert stats["requests"] == 41 and stats["cache_hits"] == 40 and stats["llm_calls"] == 1
    assert log.read_text().count("classifier ready") == 2
    for scrape in scrapes:  # whichever worker answers a scrape, it counts every worker's requests
        checks = _metric(scrape, "foresight_classifier_requests_total", endpoint="check-cache", status="200")
        assert checks == 40
        assert _metric(scrape, "foresight_classifier_cache_hits_total") == stats["cache_hits"]
    assert standin.calls == 1
