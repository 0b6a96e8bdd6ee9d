"""A running TrainingJob's progress: the newest epoch line of its reporting pod's log -> status
-> the operator's /metrics (kube-state-metrics style gauges, removed with the resource).

``progress_from_log`` is pure; ``refresh_progress`` runs against the in-process API emulator with
a fixed pod log (what the test kubelet would serve), so what is asserted is what the API holds.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from foresight_operator.builders.training import JOB_INDEX_KEY
from foresight_operator.handlers.trainingjob import job_name, progress_from_log, refresh_progress
from foresight_operator.telemetry import OperatorMetrics
from prometheus_client import CollectorRegistry, generate_latest

from tests.cluster.emulator import Cluster
from tests.unit.operator.conftest import Events, handler_context

NS = "ml"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TJ = "foresight.dev/v1alpha1/trainingjobs"


def epoch_line(epoch: int, **extra: Any) -> str:
    doc = {"event": "epoch", "epoch": epoch, "epochs": 10, "loss": 1.0 / epoch, "val_loss": 1.5 / epoch,
           "metrics": {"rmse": 0.5}, "seconds": 2.0, "eta_seconds": 2.0 * (10 - epoch), **extra}  # fmt: skip
    return json.dumps(doc)


LOG = "\n".join(
    [
        '{"event": "start", "epochs": 10}',
        epoch_line(1),
        "2026-03-01 12:00:01 INFO foresight.training: checkpoint saved",
        epoch_line(2),
        '{"event": "checkpoint", "epoch": 2}',
        "{not json at all",
    ]
)


def test_the_newest_epoch_line_wins_over_log_noise() -> None:
    assert progress_from_log(LOG, epochs=10) == {
        "epoch": 2,
        "epochs": 10,
        "metrics": {"loss": 0.5, "val_loss": 0.75, "rmse": 0.5},
        "etaSeconds": 16,
    }


def test_no_epoch_yet_is_no_progress_and_non_finite_values_are_left_out() -> None:
    assert progress_from_log('{"event": "start"}\nloading data...', epochs=5) is None
    nan = progress_from_log(epoch_line(3, val_loss=None, eta_seconds=None), epochs=10)
    assert nan is not None and "val_loss" not in nan["metrics"] and "etaSeconds" not in nan


def running_job(cluster: Cluster, name: str, log: str, *, ddp: bool = False) -> dict[str, Any]:
    """A Running TrainingJob in the API with its Job's pods (rank 0 and 1 for DDP) and their log."""
    body = {"metadata": {"name": name}, "spec": {"task": "forecast", "epochs": 10,
            "dataset": {"uri": "pvc://c/d.npz"}}}  # fmt: skip
    created = cluster.api.create(TJ, body, NS)
    cluster.api.patch(TJ, name, {"status": {"phase": "Running"}}, NS, sub="status")
    for rank in (0, 1) if ddp else (None,):
        pod_name = f"{job_name(name)}-{rank if rank is not None else 'x'}"
        annotations = {JOB_INDEX_KEY: str(rank)} if rank is not None else {}
        pod = {"metadata": {"name": pod_name, "annotations": annotations,
                            "labels": {"batch.kubernetes.io/job-name": job_name(name)}},
               "spec": {"containers": [{"name": "train", "image": "rt"}]}}  # fmt: skip
        cluster.api.create("v1/pods", pod, NS)
        cluster.api.patch("v1/pods", pod_name, {"status": {"phase": "Running"}}, NS, sub="status")
    job = job_name(name)
    logs = {f"{job}-x": log, f"{job}-0": log, f"{job}-1": "rank 1 says nothing"}
    cluster.server.log_provider = lambda ns, pod: logs.get(pod)
    return cluster.api.get(TJ, created["metadata"]["name"], NS)


def test_refresh_writes_progress_of_a_running_job_and_exports_it(cluster: Cluster, events: Events) -> None:
    ctx = handler_context(cluster, events, T0)
    body = running_job(cluster, "nightly", LOG)
    assert refresh_progress(ctx, body) is not None
    status = cluster.api.get(TJ, "nightly", NS)["status"]
    assert status["progress"] == {"epoch": 2, "epochs": 10, "metrics": {"loss": 0.5, "val_loss": 0.75,
                                  "rmse": 0.5}, "etaSeconds": 16}  # fmt: skip
    assert status["phase"] == "Running"
    text = generate_latest(ctx.metrics.registry).decode()
    assert 'foresight_trainingjob_epoch{name="nightly",namespace="ml"} 2.0' in text
    assert 'foresight_trainingjob_eta_seconds{name="nightly",namespace="ml"} 16.0' in text
    assert 'foresight_trainingjob_metric{metric="val_loss",name="nightly",namespace="ml"} 0.75' in text
    # The same log again writes nothing.
    assert refresh_progress(ctx, cluster.api.get(TJ, "nightly", NS)) is None


def test_ddp_progress_comes_from_rank_0(cluster: Cluster, events: Events) -> None:
    ctx = handler_context(cluster, events, T0)
    body = running_job(cluster, "ddp", LOG, ddp=True)
    progress = refresh_progress(ctx, body)
    assert progress is not None and progress["epoch"] == 2


def test_a_job_that_is_not_running_is_not_read(cluster: Cluster, events: Events) -> None:
    ctx = handler_context(cluster, events, T0)
    body = running_job(cluster, "done", LOG)
    body["status"]["phase"] = "Succeeded"
    assert refresh_progress(ctx, body) is None
    assert cluster.api.get(TJ, "done", NS)["status"]["progress"] == {"epoch": 0, "epochs": 0, "metrics": {}}


def test_state_gauges_follow_the_status_and_go_with_the_resource() -> None:
    metrics = OperatorMetrics(CollectorRegistry())
    ready = {"type": "Ready", "status": "False", "reason": "Running"}
    progress = {"epoch": 3, "epochs": 10, "metrics": {"loss": 0.2, "val_loss": 0.3}, "etaSeconds": 70}
    running = {"phase": "Running", "conditions": [ready], "progress": progress}
    metrics.record_status("TrainingJob", NS, "a", running)
    text = generate_latest(metrics.registry).decode()
    assert 'foresight_resource_ready{kind="TrainingJob",name="a",namespace="ml"} 0.0' in text
    assert 'foresight_resource_phase{kind="TrainingJob",name="a",namespace="ml",phase="Running"} 1.0' in text
    # Done: Ready, the final epoch, no ETA and no val_loss any more.
    done = {"epoch": 10, "epochs": 10, "metrics": {"loss": 0.1}}
    succeeded = {"phase": "Succeeded", "conditions": [{**ready, "status": "True"}], "progress": done}
    metrics.record_status("TrainingJob", NS, "a", succeeded)
    text = generate_latest(metrics.registry).decode()
    assert 'foresight_resource_ready{kind="TrainingJob",name="a",namespace="ml"} 1.0' in text
    assert 'foresight_trainingjob_epoch{name="a",namespace="ml"} 10.0' in text
    assert "foresight_trainingjob_eta_seconds{" not in text and 'metric="val_loss"' not in text
    assert 'phase="Running"' not in text
    # Deleted: every series of it is gone.
    metrics.record_status("TrainingJob", NS, "a", None)
    text = generate_latest(metrics.registry).decode()
    assert 'name="a"' not in text
