"""``distributed.backend: ray``: the RayJob builder, its status mapping, and the planner's ray branch."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from foresight.api.trainingjob import TrainingJobSpec
from foresight_operator.builders.rayjob import build_rayjob, rayjob_phase
from foresight_operator.builders.training import plan_training
from foresight_operator.handlers.trainingjob import training_status
from foresight_operator.handlers.trainingjob_ray import rayjob_as_job

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LABELS = {"app.kubernetes.io/managed-by": "foresight", "foresight.dev/name": "tune"}


def spec(**over: Any) -> TrainingJobSpec:
    doc: dict[str, Any] = {
        "task": "forecast",
        "model": "lstm",
        "dataset": {"uri": "s3://data/panel.npz"},
        "epochs": 2,
        "distributed": {"backend": "ray", "workers": 3},
        "resources": {"cpu": "2", "memory": "4Gi", "gpu": 1},
        "placement": {"nodeSelector": {"pool": "gpu"}},
        "artifacts": {"uri": "s3://models/runs", "endpoint": "minio:9000", "credentialsSecret": "s3"},
        "runPolicy": {"backoffLimit": 2, "activeDeadlineSeconds": 3600, "ttlSecondsAfterFinished": 60},
        **over,
    }
    return TrainingJobSpec.model_validate(doc)


def rayjob(s: TrainingJobSpec | None = None) -> dict[str, Any]:
    s = s or spec()
    plan = plan_training(s, namespace="ml", name="tune", config_map="tune-config", default_image="rt:1")
    return build_rayjob(
        plan,
        name="tune-ray",
        namespace="ml",
        labels=LABELS,
        workers=s.distributed.workers,
        resources=s.resources,
        placement=s.placement,
        run_policy=s.run_policy,
    )


def test_planner_accepts_ray_and_plans_no_ddp() -> None:
    plan = plan_training(spec(), namespace="ml", name="tune", config_map="c", default_image="rt:1")
    assert plan.ddp is None and plan.command[:2] == ("foresight", "train")


def test_rayjob_runs_foresight_train_on_a_cluster_of_the_requested_workers() -> None:
    rj = rayjob()
    assert (rj["apiVersion"], rj["kind"]) == ("ray.io/v1", "RayJob")
    assert rj["metadata"] == {"name": "tune-ray", "namespace": "ml", "labels": LABELS}
    s = rj["spec"]
    assert s["entrypoint"] == "foresight train --config /etc/foresight/config/train.yaml"
    assert s["shutdownAfterJobFinishes"] is True and s["suspend"] is False
    assert (s["backoffLimit"], s["activeDeadlineSeconds"], s["ttlSecondsAfterFinished"]) == (2, 3600, 60)
    cluster = s["rayClusterSpec"]
    (group,) = cluster["workerGroupSpecs"]
    assert group["replicas"] == group["minReplicas"] == group["maxReplicas"] == 3
    for template in (cluster["headGroupSpec"]["template"], group["template"]):
        pod = template["spec"]
        (container,) = pod["containers"]
        assert container["image"] == "rt:1"
        assert container["resources"]["requests"]["nvidia.com/gpu"] == "1"
        assert container["resources"]["requests"]["cpu"] == "2"
        assert pod["nodeSelector"] == {"pool": "gpu"}
        assert template["metadata"]["labels"] == LABELS
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert "/etc/foresight/config" in mounts
        assert any(v.get("configMap", {}).get("name") == "tune-config" for v in pod["volumes"])
        env = {e["name"]: e for e in container["env"]}
        assert env["FORESIGHT_S3_ENDPOINT"]["value"] == "minio:9000"
        # Credentials by reference only: the value is never in the manifest.
        assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "s3", "key": "secretKey"}


def test_suspend_reaches_the_rayjob() -> None:
    assert rayjob(spec(runPolicy={"suspend": True}))["spec"]["suspend"] is True


def _rj(status: dict[str, Any], suspend: bool = False) -> dict[str, Any]:
    return {"metadata": {"name": "tune-ray"}, "spec": {"suspend": suspend}, "status": status}


@pytest.mark.parametrize(
    ("status", "suspend", "phase"),
    [
        ({}, False, "Pending"),
        ({"jobDeploymentStatus": "Initializing"}, False, "Pending"),
        ({"jobDeploymentStatus": "Running", "jobStatus": "PENDING"}, False, "Running"),
        ({"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"}, False, "Running"),
        ({"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"}, False, "Succeeded"),
        ({"jobDeploymentStatus": "Complete", "jobStatus": "FAILED"}, False, "Failed"),
        ({"jobDeploymentStatus": "Failed", "reason": "DeadlineExceeded"}, False, "Failed"),
        ({"jobDeploymentStatus": "Suspended"}, True, "Suspended"),
    ],
)
def test_rayjob_status_maps_to_a_trainingjob_phase(status: dict[str, Any], suspend: bool, phase: str) -> None:
    assert rayjob_phase(_rj(status, suspend))[0] == phase
    body = {"metadata": {"name": "tune", "generation": 1}, "spec": {"epochs": 2}, "status": {}}
    got = training_status(body, rayjob_as_job(_rj(status, suspend)), [], now=T0, artifact_uri="s3://m/x")
    assert got["phase"] == phase


def test_failed_rayjob_keeps_kuberay_reason_and_message() -> None:
    rj = _rj(
        {"jobDeploymentStatus": "Failed", "jobStatus": "FAILED", "reason": "AppFailed", "message": "boom"}
    )
    body = {"metadata": {"name": "tune", "generation": 1}, "spec": {}, "status": {}}
    got = training_status(body, rayjob_as_job(rj), [], now=T0, artifact_uri=None)
    ready = next(c for c in got["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "AppFailed") and "boom" in ready["message"]


def test_succeeded_rayjob_gives_artifact_and_times() -> None:
    rj = _rj(
        {
            "jobDeploymentStatus": "Complete",
            "jobStatus": "SUCCEEDED",
            "startTime": "2026-03-01T11:00:00Z",
            "endTime": "2026-03-01T11:30:00Z",
        }
    )
    body = {"metadata": {"name": "tune", "generation": 1}, "spec": {}, "status": {}}
    got = training_status(body, rayjob_as_job(rj), [], now=T0, artifact_uri="s3://m/models/ml/tune")
    assert got["phase"] == "Succeeded" and got["artifactUri"] == "s3://m/models/ml/tune"
    assert (got["startTime"], got["completionTime"]) == ("2026-03-01T11:00:00Z", "2026-03-01T11:30:00Z")


SEARCH_RESULT = {
    "reason": "Succeeded",
    "metric": "val_loss",
    "mode": "min",
    "trials": [
        {"id": "a", "config": {"hidden": 8, "lr": 0.01}, "metric": 0.5, "status": "TERMINATED", "epochs": 2},
        {"id": "b", "config": {"hidden": 16, "lr": 0.1}, "metric": 0.2, "status": "TERMINATED", "epochs": 2},
        {"id": "c", "config": {"hidden": 8, "lr": 0.1}, "metric": 0.9, "status": "STOPPED", "epochs": 1},
        {"id": "d", "config": {"hidden": 16, "lr": 0.01}, "metric": None, "status": "ERROR", "epochs": 0},
    ],
    "bestTrial": {"id": "b", "config": {"hidden": 16, "lr": 0.1}, "metric": 0.2, "status": "TERMINATED"},
    "bestConfig": {"hidden": 16, "lr": 0.1},
    "bestMetric": 0.2,
    "artifactUri": "s3://m/models/ml/tune",
    "metrics": {"val_loss": 0.19, "rmse": 0.4},
}


def test_search_result_becomes_trials_best_trial_and_message() -> None:
    import json

    pod = {
        "status": {
            "phase": "Succeeded",
            "containerStatuses": [
                {
                    "state": {
                        "terminated": {
                            "exitCode": 0,
                            "message": json.dumps(SEARCH_RESULT),
                            "finishedAt": "2026-03-01T11:00:00Z",
                        }
                    }
                }
            ],
        }
    }
    job = {
        "metadata": {"name": "tune-train"},
        "spec": {},
        "status": {"conditions": [{"type": "Complete", "status": "True"}]},
    }
    body = {"metadata": {"name": "tune", "generation": 1}, "spec": {"epochs": 2}, "status": {}}
    got = training_status(body, job, [pod], now=T0, artifact_uri="s3://m/models/ml/tune")
    assert got["phase"] == "Succeeded"
    assert [t["id"] for t in got["trials"]] == ["a", "b", "c", "d"]
    assert got["trials"][0] == {
        "id": "a",
        "config": {"hidden": "8", "lr": "0.01"},
        "metric": 0.5,
        "status": "TERMINATED",
    }
    assert "metric" not in got["trials"][3] and got["trials"][3]["status"] == "ERROR"
    assert got["bestTrial"]["id"] == "b" and got["bestTrial"]["config"] == {"hidden": "16", "lr": "0.1"}
    assert got["bestMetrics"] == {"val_loss": 0.19, "rmse": 0.4}
    assert got["progress"]["epoch"] == 2
    ready = next(c for c in got["conditions"] if c["type"] == "Ready")
    assert ready["message"].startswith("4 trials (2 finished, 1 stopped early, 1 failed); best val_loss=0.2")
    assert "hidden=16, lr=0.1" in ready["message"]
