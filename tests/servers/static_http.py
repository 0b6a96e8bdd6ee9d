"""A real HTTP server for tests: ``http.server`` on 127.0.0.1 (a free port), in a thread of this process.

It serves what the test puts into :attr:`StaticHTTPServer.routes` (path -> status and body), ignores
query strings (so a URL may carry a token, as a pre-signed URL does), and records the paths it was
asked for. Used to serve model libraries to the fetch Job.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

__all__ = ["Route", "StaticHTTPServer"]


@dataclass
class Route:
    body: bytes
    status: int = 200
    content_type: str = "application/octet-stream"


class StaticHTTPServer:
    """``with StaticHTTPServer() as srv: srv.routes["/lib.tar.gz"] = Route(data); srv.url("/lib.tar.gz")``."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                owner.requests.append(path)
                route = owner.routes.get(path, Route(b"not found", 404, "text/plain"))
                self.send_response(route.status)
                self.send_header("Content-Type", route.content_type)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                self.wfile.write(route.body)

            def log_message(self, format: str, *args: object) -> None:  # quiet test output
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> StaticHTTPServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> StaticHTTPServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
