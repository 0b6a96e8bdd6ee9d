"""Deleting a ForecastTask: its Pushgateway group goes when a run may have pushed one, and an
unreachable Pushgateway never keeps the task in deletion for ever.

``ForecastTaskController.on_delete`` runs against the API emulator (run Jobs and pods in it) and a
small recording HTTP server standing in for the Pushgateway's DELETE endpoint (the real
Pushgateway is exercised end to end in tests/e2e/test_operator_forecasttask.py).
"""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf
import pytest
from foresight.api.forecasttask import ForecastTaskSpec
from foresight_operator.builders.forecasttask import ForecastRun, build_run_job
from foresight_operator.handlers.forecasttask.controller import ForecastTaskController
from foresight_operator.handlers.forecasttask.gauges import ForecastTaskMetrics
from prometheus_client import CollectorRegistry

from tests.cluster.emulator import Cluster
from tests.unit.operator.conftest import Events, handler_context

NS = "sre"
T0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)


class RecordingGateway:
    """Answers every DELETE with 202 and records its path."""

    def __init__(self) -> None:
        self.deleted: list[str] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_DELETE(self) -> None:
                recorder.deleted.append(self.path)
                self.send_response(202)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> RecordingGateway:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateway() -> Iterator[RecordingGateway]:
    with RecordingGateway() as running:
        yield running


@pytest.fixture
def controller(cluster: Cluster, events: Events) -> ForecastTaskController:
    ctx = handler_context(cluster, events, T0)
    return ForecastTaskController(ctx, ForecastTaskMetrics(CollectorRegistry()))


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens once the socket is closed


def task(pushgateway_url: str, **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "foresight.dev/v1alpha1",
        "kind": "ForecastTask",
        "metadata": {"name": "disk", "namespace": NS, "uid": "u-1", "generation": 1},
        "spec": {
            "source": {"url": "http://prom:9090", "query": "storage_used_bytes", "lookback": "48h"},
            "horizon": "6h",
            "output": {"horizons": ["1h"], "pushgatewayUrl": pushgateway_url},
        },
        "status": status,
    }


def add_run(cluster: Cluster, job: str, *, pod_phase: str | None, complete: bool = False) -> None:
    """A run Job of the task, as the operator builds it, and optionally its pod in ``pod_phase``."""
    spec = ForecastTaskSpec.model_validate(task("http://unused")["spec"])
    run = ForecastRun("train", T0 - timedelta(minutes=len(cluster.api.list("batch/v1/jobs", NS))))
    body = build_run_job(spec, name="disk", namespace=NS, run=run, default_image="rt:1")
    body["metadata"]["name"] = job
    cluster.api.create("batch/v1/jobs", body, NS)
    if complete:
        cond = {"type": "Complete", "status": "True"}
        cluster.api.patch("batch/v1/jobs", job, {"status": {"conditions": [cond]}}, NS, sub="status")
    if pod_phase is not None:
        pod = {"metadata": {"name": f"{job}-x", "labels": {"batch.kubernetes.io/job-name": job}},
               "spec": body["spec"]["template"]["spec"]}  # fmt: skip
        cluster.api.create("v1/pods", pod, NS)
        cluster.api.patch("v1/pods", f"{job}-x", {"status": {"phase": pod_phase}}, NS, sub="status")


def test_a_task_whose_runs_never_started_is_deleted_without_calling_the_pushgateway(
    cluster: Cluster, controller: ForecastTaskController
) -> None:
    add_run(cluster, "disk-train-a", pod_phase="Pending")  # unschedulable: waiting for a GPU node
    add_run(cluster, "disk-train-b", pod_phase=None)  # no pod yet
    controller.on_delete(task(closed_port_url()), retry=0)  # an unreachable gateway is not asked
    assert cluster.api.list("batch/v1/jobs", NS) == []  # its runs were stopped


@pytest.mark.parametrize(
    ("status", "run"),
    [
        ({"lastPredictTime": "2026-03-01T05:00:00Z"}, None),
        ({}, {"pod_phase": "Running"}),
        ({}, {"pod_phase": "Succeeded", "complete": True}),
    ],
    ids=["reported-a-prediction", "run-started", "run-succeeded-not-yet-harvested"],
)
def test_a_task_that_may_have_pushed_has_its_group_deleted(
    cluster: Cluster,
    controller: ForecastTaskController,
    gateway: RecordingGateway,
    status: dict[str, Any],
    run: dict[str, Any] | None,
) -> None:
    if run is not None:
        add_run(cluster, "disk-train-a", **run)
    controller.on_delete(task(gateway.url, **status), retry=0)
    assert gateway.deleted == [f"/metrics/job/foresight/namespace/{NS}/task/disk"]


def test_an_unreachable_pushgateway_is_retried_then_given_up_with_a_warning(
    controller: ForecastTaskController, events: Events
) -> None:
    body = task(closed_port_url(), lastPredictTime="2026-03-01T05:00:00Z")
    with pytest.raises(kopf.TemporaryError, match="not deleted yet") as err:
        controller.on_delete(body, retry=0)
    assert err.value.delay == 10
    assert events == []
    controller.on_delete(body, retry=5)  # the sixth try: give up, let the deletion finish
    ((kind, reason, message),) = events
    assert (kind, reason) == ("Warning", "PushgatewayUnavailable")
    assert "delete it by hand" in message and f"'namespace': '{NS}'" in message
