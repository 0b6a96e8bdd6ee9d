"""Client behaviour a real Prometheus will not show on demand (5xx, auth), against a tiny local
HTTP stand-in on 127.0.0.1 that answers in the Prometheus API's documented JSON shapes."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from foresight.prometheus import (
    PrometheusClient,
    PrometheusResponseError,
    PrometheusUnavailable,
    RetryPolicy,
)

OK = {
    "status": "success",
    "data": {"resultType": "vector", "result": [{"metric": {"a": "1"}, "value": [10, "2.5"]}]},
}


class Stand:
    def __init__(self) -> None:
        self.script: list[tuple[int, object]] = []
        self.headers: list[dict[str, str]] = []


@pytest.fixture
def stand() -> Iterator[tuple[Stand, str]]:
    state = Stand()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.headers.append(dict(self.headers))
            status, body = state.script.pop(0) if state.script else (200, OK)
            raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_5xx_is_retried_with_backoff_then_succeeds(stand: tuple[Stand, str]) -> None:
    state, url = stand
    state.script = [
        (503, {"status": "error", "errorType": "unavailable", "error": "busy"}),
        (502, "<html>bad gateway"),
    ]
    sleeps: list[float] = []
    client = PrometheusClient(url, retry=RetryPolicy(attempts=3, base_delay=1.0), sleep=sleeps.append)
    [sample] = client.query("up", time=10)
    assert (sample.labels, sample.timestamp, sample.value) == ({"a": "1"}, 10.0, 2.5)
    assert sleeps == [1.0, 2.0]


def test_5xx_until_attempts_run_out(stand: tuple[Stand, str]) -> None:
    state, url = stand
    state.script = [(500, "oops")] * 2
    client = PrometheusClient(url, retry=RetryPolicy(attempts=2), sleep=lambda s: None)
    with pytest.raises(PrometheusUnavailable) as ei:
        client.query("up")
    assert ei.value.attempts == 2 and "HTTP 500" in ei.value.reason


def test_bearer_token_is_sent_but_never_logged_or_shown(
    stand: tuple[Stand, str], caplog: pytest.LogCaptureFixture
) -> None:
    state, url = stand
    secret = "s3cr3t-token-value"
    state.script = [(503, "busy"), (401, {"status": "error", "errorType": "unauthorized", "error": "no"})]
    client = PrometheusClient(url, bearer_token=secret, retry=RetryPolicy(attempts=3), sleep=lambda s: None)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(PrometheusResponseError) as ei:
        client.query("up")
    assert state.headers[0]["Authorization"] == f"Bearer {secret}"
    assert ei.value.status == 401 and "token" in str(ei.value)
    assert secret not in caplog.text and secret not in repr(client) and secret not in str(ei.value)


def test_basic_auth_is_sent(stand: tuple[Stand, str]) -> None:
    state, url = stand
    PrometheusClient(url, basic_auth=("u", "p")).query("up")
    assert state.headers[0]["Authorization"].startswith("Basic ")
