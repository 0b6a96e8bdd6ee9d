"""The Pushgateway group URL: the runtime pushes where the operator deletes, odd label values included.

A recording HTTP server stands in for the Pushgateway (the real one is exercised end to end in
tests/e2e/test_operator_forecasttask.py); it records the path of every PUT and DELETE.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from foresight.contract.pushgateway import group_url
from foresight.prometheus.client import RetryPolicy
from foresight.prometheus.pushgateway import delete_group, push
from foresight_operator.handlers.forecasttask.deletion import delete_pushgateway_group
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.exposition import push_to_gateway


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                recorder.calls.append((self.command, self.path))
                self.send_response(202 if self.command == "DELETE" else 200)
                self.end_headers()

            do_PUT = do_DELETE = _record

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def gateway() -> Iterator[Recorder]:
    recorder = Recorder()
    yield recorder
    recorder.server.shutdown()
    recorder.server.server_close()


KEYS = [
    {"namespace": "sre", "task": "disk"},
    {"namespace": "team a", "task": "x/y"},  # a space and a slash: base64 segments
    {"namespace": "sre", "task": ""},  # an empty value
]


@pytest.mark.parametrize("key", KEYS)
def test_the_runtime_pushes_where_the_operator_deletes(gateway: Recorder, key: dict[str, str]) -> None:
    registry = CollectorRegistry()
    Gauge("foresight_forecast", "x", registry=registry).set(1)
    push(gateway.url, registry, grouping_key=key, retry=RetryPolicy(attempts=1))
    delete_pushgateway_group(gateway.url, key)  # the operator
    delete_group(gateway.url, grouping_key=key, retry=RetryPolicy(attempts=1))  # the runtime's own
    (put, put_path), (op_delete, op_path), (rt_delete, rt_path) = gateway.calls
    assert (put, op_delete, rt_delete) == ("PUT", "DELETE", "DELETE")
    assert put_path == op_path == rt_path


@pytest.mark.parametrize("key", KEYS)
def test_the_url_is_the_one_prometheus_client_builds(key: dict[str, str]) -> None:
    seen: list[str] = []

    def handler(url: str, method: str, timeout: float | None, headers: Any, data: bytes) -> Any:
        seen.append(url)
        return lambda: None

    push_to_gateway("pgw:9091", "foresight", CollectorRegistry(), grouping_key=key, handler=handler)
    assert seen == [group_url("pgw:9091", job="foresight", grouping_key=key)]
