"""The operator's own telemetry: its Prometheus metrics (reconciles, errors, children, every
resource's state, kube-state-metrics style) and the small HTTP server for ``/metrics`` and ``/readyz``.

Not to be confused with the runtime's metrics (forecast accuracy, the classifier's request
counters), which live with the runtime. Metrics live in a Prometheus ``CollectorRegistry`` passed
in (tests build fresh ones). ``/readyz`` answers 200 once kopf has started its watches (the
``ready`` event) and 503 before, so the Deployment's readiness probe reflects whether the
operator is actually serving.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from foresight.api import AB_EXPERIMENT, TRAINING_JOB
from foresight.api.meta import ConditionType, Reason
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["MetricsServer", "OperatorMetrics"]

WAITING_PHASES = (Reason.PENDING,)
"""Phases counted as waiting to start (every kind's phase enum has ``Pending``)."""


class _PerResource:
    """A gauge whose series belong to one resource each (keyed ``(namespace, name)``): setting a
    resource's values removes the series it no longer has, ``None`` removes them all."""

    def __init__(self, gauge: Gauge) -> None:
        self.gauge = gauge
        self._keys: dict[tuple[str, str], set[tuple[str, ...]]] = {}

    def set(self, owner: tuple[str, str], values: Mapping[tuple[str, ...], float] | None) -> None:
        old = self._keys.pop(owner, set())
        for labels in old - set(values or {}):
            self.gauge.remove(*owner, *labels)
        for labels, value in (values or {}).items():
            self.gauge.labels(*owner, *labels).set(value)
        if values:
            self._keys[owner] = set(values)


class _ExperimentGauges:
    """An ABExperiment's state from its status: weights, samples, means, p-values, decisions."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def gauge(name: str, doc: str, *labels: str) -> _PerResource:
            return _PerResource(Gauge(name, doc, ["namespace", "name", *labels], registry=registry))

        self.weight = gauge(
            "foresight_abexperiment_weight",
            "Effective traffic percent per variant (status.variants[].weight).",
            "variant",
        )
        self.samples = gauge(
            "foresight_abexperiment_samples", "Samples of the primary metric per variant.", "variant"
        )
        self.mean = gauge("foresight_abexperiment_mean", "The primary metric's mean per variant.", "variant")
        self.p_value = gauge(
            "foresight_abexperiment_p_value",
            "Holm-corrected always-valid p-value of each candidate against the control.",
            "metric",
            "candidate",
        )
        self.effect = gauge(
            "foresight_abexperiment_effect",
            "Candidate minus control on each deciding metric (the sequential test's estimate).",
            "metric",
            "candidate",
        )
        self.decisions = gauge(
            "foresight_abexperiment_decisions",
            "Analyses by the action decided (status.decisionCounts), since the experiment started.",
            "action",
        )
        self.srm_p_value = gauge(
            "foresight_abexperiment_srm_p_value", "p-value of the sample-ratio-mismatch check."
        )

    def record(self, namespace: str, name: str, status: Mapping[str, Any] | None) -> None:
        owner = (namespace, name)
        st = status or {}
        variants = [v for v in st.get("variants") or [] if isinstance(v, Mapping) and v.get("name")]
        comparisons = [c for c in st.get("comparisons") or [] if isinstance(c, Mapping)]

        def per_variant(key: str) -> dict[tuple[str, ...], float]:
            return {(str(v["name"]),): float(v[key]) for v in variants if v.get(key) is not None}

        def per_comparison(key: str) -> dict[tuple[str, ...], float]:
            return {
                (str(c["metric"]), str(c["candidate"])): float(c[key])
                for c in comparisons
                if c.get(key) is not None
            }

        self.weight.set(owner, per_variant("weight") if status else None)
        self.samples.set(owner, per_variant("samples") if status else None)
        self.mean.set(owner, per_variant("mean") if status else None)
        self.p_value.set(owner, per_comparison("adjustedPValue") if status else None)
        self.effect.set(owner, per_comparison("difference") if status else None)
        counts = st.get("decisionCounts") or {}
        self.decisions.set(owner, {(str(a),): float(n) for a, n in counts.items()} if status else None)
        srm = st.get("srm") or {}
        self.srm_p_value.set(owner, {(): float(srm["pValue"])} if srm.get("pValue") is not None else None)


class OperatorMetrics:
    """Reconciles, errors and durations per kind, children created, runs waiting, and every
    resource's state from its status (phase, Ready, training progress, an experiment's weights,
    samples, p-values and decisions), kube-state-metrics style."""

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
        self.ready = Gauge(
            "foresight_resource_ready",
            "1 when the resource's Ready condition is True, 0 when False (kube-state-metrics style).",
            ["kind", "namespace", "name"],
            registry=registry,
        )
        self.training_epoch = Gauge(
            "foresight_trainingjob_epoch",
            "Epochs a TrainingJob has finished (status.progress.epoch).",
            ["namespace", "name"],
            registry=registry,
        )
        self.training_epochs = Gauge(
            "foresight_trainingjob_epochs",
            "Epochs a TrainingJob trains in all (status.progress.epochs).",
            ["namespace", "name"],
            registry=registry,
        )
        self.training_eta = Gauge(
            "foresight_trainingjob_eta_seconds",
            "Estimated seconds left in a running TrainingJob (status.progress.etaSeconds).",
            ["namespace", "name"],
            registry=registry,
        )
        self.training_metric = Gauge(
            "foresight_trainingjob_metric",
            "The latest value of each training metric (loss, val_loss, ...) of a TrainingJob.",
            ["namespace", "name", "metric"],
            registry=registry,
        )
        self.experiments = _ExperimentGauges(registry)
        self._lock = threading.Lock()
        self._phases: dict[tuple[str, str, str], str] = {}
        self._ready: set[tuple[str, str, str]] = set()
        self._training: dict[tuple[str, str], tuple[bool, set[str]]] = {}

    @contextmanager
    def timed(self, kind: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.duration.labels(kind=kind).observe(time.perf_counter() - start)

    def record_status(self, kind: str, namespace: str, name: str, status: Mapping[str, Any] | None) -> None:
        """Export a resource's state from its status (``None`` = gone): phase, Ready, and for a
        TrainingJob its progress. Series of a resource that went away are removed."""
        self._record_phase(
            kind, namespace, name, str(status["phase"]) if status and status.get("phase") else None
        )
        conditions = (status or {}).get("conditions") or []
        ready = next((c for c in conditions if c.get("type") == ConditionType.READY), None)
        key = (kind, namespace, name)
        with self._lock:
            if ready is not None:
                self.ready.labels(kind=kind, namespace=namespace, name=name).set(
                    ready.get("status") == "True"
                )
                self._ready.add(key)
            elif key in self._ready:
                self._ready.discard(key)
                self.ready.remove(kind, namespace, name)
            if kind == TRAINING_JOB.kind:
                self._record_training(namespace, name, (status or {}).get("progress") if status else None)
            elif kind == AB_EXPERIMENT.kind:
                self.experiments.record(namespace, name, status)

    def _record_training(self, namespace: str, name: str, progress: Mapping[str, Any] | None) -> None:
        key = (namespace, name)
        old = self._training.pop(key, None)  # (has an ETA series, metric names) while series exist
        metrics = {str(k): float(v) for k, v in ((progress or {}).get("metrics") or {}).items()}
        eta = (progress or {}).get("etaSeconds")
        if old is not None:
            had_eta, old_metrics = old
            for metric in old_metrics - metrics.keys():
                self.training_metric.remove(namespace, name, metric)
            if had_eta and eta is None:
                self.training_eta.remove(namespace, name)
            if progress is None:
                self.training_epoch.remove(namespace, name)
                self.training_epochs.remove(namespace, name)
        if progress is None:
            return
        self.training_epoch.labels(namespace=namespace, name=name).set(int(progress.get("epoch") or 0))
        self.training_epochs.labels(namespace=namespace, name=name).set(int(progress.get("epochs") or 0))
        if eta is not None:
            self.training_eta.labels(namespace=namespace, name=name).set(float(eta))
        for metric, value in metrics.items():
            self.training_metric.labels(namespace=namespace, name=name, metric=metric).set(value)
        self._training[key] = (eta is not None, set(metrics))

    def _record_phase(self, kind: str, namespace: str, name: str, phase: str | None) -> None:
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
