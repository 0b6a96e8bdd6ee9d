"""The operator's Prometheus metrics and the small HTTP server for ``/metrics`` and ``/readyz``.

Metrics live in a registry passed in (tests build fresh ones). ``/readyz`` answers 200 once kopf
has started its watches (the ``ready`` event) and 503 before, so the Deployment's readiness probe
reflects whether the operator is actually serving.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["MetricsServer", "OperatorMetrics"]

WAITING_PHASES = ("Pending",)


class OperatorMetrics:
    """Reconciles, errors and durations per kind, children created, runs waiting, resource phases."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.reconciles = Counter(
            "foresight_operator_reconciles",
            "Reconciles run, by kind and result (ok, invalid, retry).",
            ["kind", "result"],
            registry=registry,
        )
        self.errors = Counter(
            "foresight_operator_reconcile_errors",
            "Failed reconciles by kind and condition reason.",
            ["kind", "reason"],
            registry=registry,
        )
        self.duration = Histogram(
            "foresight_operator_reconcile_duration_seconds",
            "Wall time of one reconcile, by kind.",
            ["kind"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        self.children = Counter(
            "foresight_operator_children_created",
            "Child objects created, by owner kind and child kind.",
            ["kind", "child"],
            registry=registry,
        )
        self.scheduled = Gauge(
            "foresight_operator_scheduled_runs",
            "Runs created and waiting to start (phase Pending), by kind.",
            ["kind"],
            registry=registry,
        )
        self.phase = Gauge(
            "foresight_resource_phase",
            "1 for the current phase of every resource (kube-state-metrics style).",
            ["kind", "namespace", "name", "phase"],
            registry=registry,
        )
        self._lock = threading.Lock()
        self._phases: dict[tuple[str, str, str], str] = {}

    @contextmanager
    def timed(self, kind: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.duration.labels(kind=kind).observe(time.perf_counter() - start)

    def record_phase(self, kind: str, namespace: str, name: str, phase: str | None) -> None:
        """Remember a resource's phase (``None`` = gone) and update the phase and queue gauges."""
        key = (kind, namespace, name)
        with self._lock:
            old = self._phases.pop(key, None)
            if old is not None:
                self.phase.remove(kind, namespace, name, old)
            if phase is not None:
                self._phases[key] = phase
                self.phase.labels(kind=kind, namespace=namespace, name=name, phase=phase).set(1)
            waiting = sum(1 for (k, _, _), p in self._phases.items() if k == kind and p in WAITING_PHASES)
            self.scheduled.labels(kind=kind).set(waiting)


class MetricsServer:
    """``/metrics`` (Prometheus text) and ``/readyz`` on ``host:port``, in a daemon thread."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry, ready: threading.Event) -> None:
        self.registry = registry
        self.ready = ready
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] == "/metrics":
                    body, code, ctype = generate_latest(server.registry), 200, CONTENT_TYPE_LATEST
                elif self.path.split("?")[0] in ("/readyz", "/healthz"):
                    ok = server.ready.is_set()
                    body, code, ctype = (b"ok\n" if ok else b"starting\n"), (200 if ok else 503), "text/plain"
                else:
                    body, code, ctype = b"not found: try /metrics or /readyz\n", 404, "text/plain"
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # probes every few seconds would drown the operator's own log

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="metrics", daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
