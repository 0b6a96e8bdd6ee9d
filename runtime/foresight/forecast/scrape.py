"""Scrape mode of a ForecastTask: serve the exposition its runs keep in the artifact store.

A run with ``output.mode: scrape`` (:func:`foresight.forecast.pipeline.run_forecast_task`) writes
the same gauge families the Pushgateway path pushes (:mod:`foresight.forecast.writeback`) as one
text exposition under :func:`~foresight.forecast.persistence.exposition_key` in the task's artifact
store, one atomic put per run. ``foresight serve forecasts`` (what the Deployment the operator
keeps for such a task runs; its entry point is :mod:`foresight.run.serve_forecasts`) serves it:

- ``/metrics``: the newest stored exposition. A poll thread stats the object every ``refresh``
  seconds and reads it again only when its SHA-256 changed, so a run's new forecasts are served
  within one poll. Before the first run wrote one the answer is an empty but valid exposition (a
  comment line only), and a log line says so. A copy once read keeps being served while the
  store is unreachable (``foresight_last_run_timestamp_seconds`` shows how old it is).
- ``/healthz``: JSON about what is served; 503 while the last look at the store failed (the
  probes take the pod out of the Service and, if it lasts, restart it).

The pod only reads the store (it is mounted read-only) and never talks to the Kubernetes API.
"""

from __future__ import annotations

import json
import logging
import threading
import time as _time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

from foresight.artifacts import (
    ArtifactError,
    ArtifactNotFoundError,
    ArtifactStore,
    ChecksumMismatchError,
    sha256_bytes,
)
from foresight.contract.forecast import HEALTH_PATH, METRICS_PATH

__all__ = [
    "CONTENT_TYPE",
    "StoredExposition",
    "make_app",
    "serve_forecasts",
]

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""What :func:`foresight.forecast.writeback.exposition` writes (plain names, no UTF-8 escaping)."""


@dataclass(frozen=True)
class Served:
    """What the server answers now."""

    data: bytes
    sha256: str | None
    """Of the stored object served; ``None`` while no run has written one."""
    read_at: float | None
    error: str | None
    """Why the last look at the store failed; ``None`` when it worked."""


class StoredExposition:
    """The exposition of one task in its store, re-read when it changes (thread-safe)."""

    def __init__(
        self,
        store: ArtifactStore,
        key: str,
        *,
        task: str,
        clock: Callable[[], float] = _time.time,
    ) -> None:
        self.store = store
        self.key = key
        self.uri = store.uri_for(key)
        self.task = task
        self._clock = clock
        self._lock = threading.Lock()
        placeholder = (
            f"# foresight: no run of ForecastTask {task} has written forecasts to {self.uri} yet\n"
        ).encode()
        self._served = Served(placeholder, None, None, None)
        self._said_missing = False

    @property
    def served(self) -> Served:
        with self._lock:
            return self._served

    def _set(self, **changes: Any) -> None:
        with self._lock:
            self._served = replace(self._served, **changes)

    def refresh(self) -> bool:
        """Look at the store once; ``True`` when a new exposition is now served."""
        current = self.served
        try:
            info = self.store.stat(self.key)
        except ArtifactNotFoundError:
            self._set(error=None)
            if current.sha256 is None and not self._said_missing:
                self._said_missing = True
                log.info(
                    "no exposition at %s yet: serving an empty one until the first run of %s writes it",
                    self.uri,
                    self.task,
                )
            return False
        except (ArtifactError, OSError) as exc:
            return self._failed(exc)
        if info.sha256 == current.sha256:
            self._set(error=None)
            return False
        try:
            data = self.store.get_bytes(self.key, expected_sha256=info.sha256 or None)
        except (ArtifactNotFoundError, ChecksumMismatchError):
            # Replaced between the stat and the read: the next poll reads the newer one.
            return False
        except (ArtifactError, OSError) as exc:
            return self._failed(exc)
        sha = info.sha256 or sha256_bytes(data)
        self._set(data=data, sha256=sha, read_at=self._clock(), error=None)
        log.info("serving the exposition at %s (sha256 %s, %d bytes)", self.uri, sha[:12], len(data))
        return True

    def _failed(self, exc: BaseException) -> bool:
        message = (
            f"cannot read {self.uri}: {exc}; check that the store is reachable and mounted (still serving "
            "the last exposition read)"
        )
        if message != self.served.error:
            log.warning("%s", message)
        self._set(error=message)
        return False

    def health(self) -> dict[str, Any]:
        s = self.served
        read_at = datetime.fromtimestamp(s.read_at, tz=UTC) if s.read_at is not None else None
        doc: dict[str, Any] = {
            "status": "error" if s.error else "ok",
            "task": self.task,
            "exposition": self.uri,
            "written": s.sha256 is not None,
            "sha256": s.sha256,
            "bytes": len(s.data) if s.sha256 is not None else 0,
            "readAt": read_at.strftime("%Y-%m-%dT%H:%M:%SZ") if read_at is not None else None,
        }
        if s.error:
            doc["error"] = s.error
        return doc


WSGIApp = Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]


def make_app(source: StoredExposition) -> WSGIApp:
    """``/metrics`` and ``/healthz`` over ``source`` (GET and HEAD)."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO") or "/")
        method = str(environ.get("REQUEST_METHOD") or "GET")
        if method not in ("GET", "HEAD"):
            status, ctype, body = "405 Method Not Allowed", "text/plain; charset=utf-8", b"GET or HEAD only\n"
        elif path == METRICS_PATH:
            status, ctype, body = "200 OK", CONTENT_TYPE, source.served.data
        elif path == HEALTH_PATH:
            doc = source.health()
            status = "200 OK" if doc["status"] == "ok" else "503 Service Unavailable"
            ctype, body = "application/json", (json.dumps(doc, sort_keys=True) + "\n").encode()
        else:
            status, ctype = "404 Not Found", "text/plain; charset=utf-8"
            body = f"not found: {path}; forecasts at {METRICS_PATH}, health at {HEALTH_PATH}\n".encode()
        start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))])
        return [b"" if method == "HEAD" else body]

    return app


def serve_forecasts(
    source: StoredExposition,
    *,
    host: str,
    port: int,
    refresh: float,
    stop: threading.Event,
) -> None:
    """Serve ``source`` on ``host:port`` and poll the store every ``refresh`` seconds until ``stop``."""
    from foresight.prometheus.pushgateway import serve_app

    source.refresh()
    try:
        server = serve_app(make_app(source), port=port, addr=host)
    except OSError as exc:
        raise OSError(f"cannot listen on {host}:{port} ({exc}): choose another --port or --host") from exc
    log.info(
        "serving ForecastTask %s at http://%s:%d%s (health %s) from %s, checked every %gs",
        source.task, host, server.port, METRICS_PATH, HEALTH_PATH, source.uri, refresh,
    )  # fmt: skip
    try:
        while not stop.wait(refresh):
            source.refresh()
    finally:
        server.stop()
        log.info("stopped serving ForecastTask %s", source.task)
