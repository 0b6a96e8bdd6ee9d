"""A local stand-in for DashScope's multimodal-generation HTTP API, driven by the real ``dashscope`` SDK.

``POST /api/v1/services/aigc/multimodal-generation/generation`` on 127.0.0.1 (free port), served by
a thread per request so concurrent SDK calls overlap like against the real API. Scriptable:

- ``answer``: the text every successful call returns (default ``"other"``); ``answers`` maps a
  model name to its own answer (variants with different models);
- ``delay``: seconds to wait before answering (for timeouts, a hanging upstream and the uncached
  benchmark);
- ``fail_next(status, times, body=None, retry_after=None)``: the next ``times`` calls answer
  ``status`` with a DashScope error body (``{"code", "message", "request_id"}``) or the raw
  ``body`` given, with a ``Retry-After`` header when ``retry_after`` is set;
- ``fail_always(status)``: every call fails so (the failure-cost benchmark); ``None`` stops it;
- ``hold``: an Event; while it is set to a cleared Event, calls wait for it (identical requests
  pile up on one call, deterministically) before they answer;
- ``calls`` counts requests and ``requests`` records them (method, path, headers, parsed JSON).

Run standalone for benchmarks: ``python -m tests.servers.dashscope_standin --port 0 --delay 0.3``.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["GENERATION_PATH", "DashScopeStandIn", "RecordedRequest"]

GENERATION_PATH = "/api/v1/services/aigc/multimodal-generation/generation"


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any

    def images(self) -> list[str]:
        """The ``image`` entries of the user message (data URIs)."""
        out: list[str] = []
        for msg in (self.body or {}).get("input", {}).get("messages", []):
            content = msg.get("content", [])
            if isinstance(content, list):
                out += [part["image"] for part in content if isinstance(part, dict) and "image" in part]
        return out

    def texts(self) -> list[str]:
        out: list[str] = []
        for msg in (self.body or {}).get("input", {}).get("messages", []):
            content = msg.get("content", [])
            if isinstance(content, list):
                out += [part["text"] for part in content if isinstance(part, dict) and "text" in part]
        return out


@dataclass
class _Failure:
    status: int
    body: bytes
    content_type: str
    retry_after: str | None = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the uncached benchmark opens 64+ connections at once


@dataclass
class DashScopeStandIn:
    answer: str = "other"
    answers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    always: _Failure | None = None
    hold: threading.Event | None = None
    host: str = "127.0.0.1"
    port: int = 0
    record: bool = True
    calls: int = 0
    requests: list[RecordedRequest] = field(default_factory=list)
    _failures: deque[_Failure] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: _Server | None = None
    _thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """What to give ``dashscope`` as its HTTP API base URL."""
        return f"http://{self.host}:{self.port}/api/v1"

    def _failure(self, status: int, body: str | None, retry_after: float | str | None) -> _Failure:
        after = None if retry_after is None else str(retry_after)
        if body is None:
            payload = json.dumps(
                {
                    "code": "Throttling" if status == 429 else "InternalError",
                    "message": f"stand-in failure {status}",
                    "request_id": uuid.uuid4().hex,
                }
            )
            return _Failure(status, payload.encode(), "application/json", after)
        ctype = "text/html" if body.lstrip().startswith("<") else "application/json"
        return _Failure(status, body.encode(), ctype, after)

    def fail_next(
        self, status: int, times: int = 1, body: str | None = None, retry_after: float | str | None = None
    ) -> None:
        failure = self._failure(status, body, retry_after)
        with self._lock:
            self._failures.extend([failure] * times)

    def fail_always(self, status: int | None, retry_after: float | str | None = None) -> None:
        with self._lock:
            self.always = None if status is None else self._failure(status, None, retry_after)

    def reset(self) -> None:
        with self._lock:
            self.calls = 0
            self.requests.clear()
            self._failures.clear()
            self.always = None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read their own logs
                return

            def _send(
                self, status: int, body: bytes, ctype: str = "application/json", after: str | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                if after is not None:
                    self.send_header("Retry-After", after)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path == "/calls":  # for benchmarks running the stand-in as its own process
                    with standin._lock:
                        calls = standin.calls
                    self._send(200, json.dumps({"calls": calls}).encode())
                else:
                    self._send(200, b"{}")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.path.split("?")[0] != GENERATION_PATH:
                    self._send(404, json.dumps({"code": "NotFound", "message": self.path}).encode())
                    return
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                with standin._lock:
                    standin.calls += 1
                    if standin.record:
                        standin.requests.append(RecordedRequest("POST", self.path, dict(self.headers), body))
                    failure = standin._failures.popleft() if standin._failures else standin.always
                    model = (body or {}).get("model") if isinstance(body, dict) else None
                    answer, delay = standin.answers.get(str(model), standin.answer), standin.delay
                hold = standin.hold
                if hold is not None:
                    hold.wait(60)
                if delay:
                    time.sleep(delay)
                if failure is not None:
                    self._send(failure.status, failure.body, failure.content_type, failure.retry_after)
                    return
                rid = uuid.uuid4().hex
                payload = {
                    "output": {
                        "choices": [
                            {
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": [{"text": answer}]},
                            }
                        ]
                    },
                    "usage": {"input_tokens": 1200, "output_tokens": 3, "image_tokens": 1000},
                    "request_id": rid,
                }
                self._send(200, json.dumps(payload).encode())

        return Handler

    def start(self) -> DashScopeStandIn:
        server = _Server((self.host, self.port), self._handler())
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, name="dashscope-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> DashScopeStandIn:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--answer", default="other")
    parser.add_argument("--fail", type=int, default=None, help="answer every call with this status")
    args = parser.parse_args()
    standin = DashScopeStandIn(answer=args.answer, delay=args.delay, port=args.port, record=False).start()
    if args.fail is not None:
        standin.fail_always(args.fail)
    print(standin.base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        standin.stop()


if __name__ == "__main__":
    main()
