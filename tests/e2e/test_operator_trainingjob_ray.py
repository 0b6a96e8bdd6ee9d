"""``distributed.backend: ray`` and Ray Tune searches through the real operator, kubectl and the kubelet.

- Without KubeRay (no ``rayjobs.ray.io`` CRD) a ray TrainingJob gets a ``KubeRayNotInstalled``
  condition saying what to do, once, not a retry storm; the operator keeps serving.
- With the CRD installed (the test applies a minimal one, as ``helm install kuberay-operator``
  would), the operator makes a RayJob owned by the TrainingJob (entrypoint ``foresight train``,
  runtime image, worker replicas = workers, resources), and the RayJob's status, written here as
  KubeRay would, becomes the TrainingJob's phase: Running, then Succeeded.
- A 4-trial Ray Tune search on a single pod (local Ray inside the pod, the ``toy`` task) reports
  its trials and the best configuration in the TrainingJob's status.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
import requests
import yaml
from foresight_operator.handlers.trainingjob_ray import RAY_CRD_RETRY_S

from tests.cluster.emulator import Cluster
from tests.cluster.kubectl import Kubectl
from tests.cluster.kubelet import Kubelet
from tests.cluster.operator_process import OperatorProcess
from tests.e2e.resources import TJ, condition, phase_is, toy_trainingjob

pytestmark = pytest.mark.e2e

RAYJOBS = "ray.io/v1/rayjobs"
RAYJOB_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "rayjobs.ray.io"},
    "spec": {
        "group": "ray.io",
        "names": {"kind": "RayJob", "listKind": "RayJobList", "plural": "rayjobs", "singular": "rayjob"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                },
            }
        ],
    },
}


def retry_record(o: dict[str, Any] | None) -> dict[str, Any] | None:
    """kopf's progress record of a handler that failed and is waiting to retry (its ``delayed`` set),
    from the operator's ``foresight.dev/<handler>`` annotations; ``None`` when there is none."""
    for key, value in (((o or {}).get("metadata") or {}).get("annotations") or {}).items():
        if not key.startswith("foresight.dev/"):
            continue
        try:
            record = json.loads(value)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("delayed"):
            return record
    return None


def has_reason(reason: str) -> Callable[[dict[str, Any] | None], bool]:
    return lambda o: any(
        c.get("reason") == reason for c in ((o or {}).get("status") or {}).get("conditions") or []
    )


def test_ray_backend_waits_for_kuberay_then_runs_a_rayjob_and_follows_its_status(
    cluster: Cluster, kubectl: Kubectl, operator: OperatorProcess
) -> None:
    api = cluster.api
    ray = {"backend": "ray", "workers": 2}
    kubectl.apply(yaml.safe_dump(toy_trainingjob("no-kuberay", distributed=ray))).check()
    waiting = api.wait_for(TJ, "no-kuberay", has_reason("KubeRayNotInstalled"), "default", timeout=30)
    assert waiting is not None
    cond = condition(waiting, "Ready")
    assert cond["status"] == "False" and "rayjobs.ray.io" in cond["message"]
    assert "install" in cond["message"] and "backend to none" in cond["message"]
    # One look, then a slow retry: no storm of attempts, and the operator keeps serving. kopf records
    # the retry it scheduled in the handler's progress annotation; once that is there, the attempt
    # has been counted and the next one's time is known.
    scheduled = api.wait_for(TJ, "no-kuberay", lambda o: retry_record(o) is not None, "default", timeout=30)
    record = retry_record(scheduled)
    assert record is not None and record.get("retries") == 1, record
    delay = datetime.fromisoformat(record["delayed"]) - datetime.fromisoformat(record["started"])
    assert delay.total_seconds() >= RAY_CRD_RETRY_S - 5, record  # minus the first attempt's own time
    metrics = requests.get(operator.url("/metrics"), timeout=5).text
    attempts = [
        line
        for line in metrics.splitlines()
        if line.startswith("foresight_operator_reconcile_errors_total{")
        and 'reason="KubeRayNotInstalled"' in line
    ]
    assert attempts and all(line.endswith(" 1.0") for line in attempts), attempts
    assert api.list("batch/v1/jobs", "default") == []  # nothing runs without KubeRay

    # KubeRay installed: a new ray TrainingJob gets its RayJob.
    kubectl.apply(yaml.safe_dump(RAYJOB_CRD)).check()
    body = toy_trainingjob("tune-ray", distributed={"backend": "ray", "workers": 3})
    kubectl.apply(yaml.safe_dump(body)).check()
    tj = api.wait_for(TJ, "tune-ray", lambda o: o is not None, "default")
    assert tj is not None
    rj = api.wait_for(RAYJOBS, "tune-ray-ray", lambda o: o is not None, "default", timeout=30)
    assert rj is not None
    (ref,) = rj["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["name"], ref["uid"]) == ("TrainingJob", "tune-ray", tj["metadata"]["uid"])
    assert rj["spec"]["entrypoint"] == "foresight train --config /etc/foresight/config/train.yaml"
    (group,) = rj["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    assert group["replicas"] == 3
    head = rj["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert head["image"] == "foresight-runtime:e2e"
    assert head["resources"]["requests"] == {"cpu": "250m", "memory": "512Mi", "nvidia.com/gpu": "1"}
    assert api.find("batch/v1/jobs", "tune-ray-train", "default") is None  # no Job for ray

    # KubeRay's status updates become the TrainingJob's phase.
    running = {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING", "startTime": "2026-03-01T11:00:00Z"}
    api.patch(RAYJOBS, "tune-ray-ray", {"status": running}, "default", sub="status")
    assert api.wait_for(TJ, "tune-ray", phase_is("Running"), "default", timeout=30) is not None
    done = {
        **running,
        "jobDeploymentStatus": "Complete",
        "jobStatus": "SUCCEEDED",
        "endTime": "2026-03-01T11:05:00Z",
    }
    api.patch(RAYJOBS, "tune-ray-ray", {"status": done}, "default", sub="status")
    finished = api.wait_for(TJ, "tune-ray", phase_is("Succeeded", "Failed"), "default", timeout=30)
    assert finished is not None and finished["status"]["phase"] == "Succeeded", finished["status"]
    assert finished["status"]["completionTime"] == "2026-03-01T11:05:00Z"
    assert finished["status"]["artifactUri"] == "pvc://foresight-artifacts/models/default/tune-ray"
    described = kubectl("describe", "tj", "tune-ray").check().stdout.split("Events:")[-1]
    assert "RayJobCreated" in described


def test_four_trial_ray_tune_search_on_one_pod_reports_trials_and_best_config(
    cluster: Cluster, kubectl: Kubectl, kubelet: Kubelet, operator: OperatorProcess
) -> None:
    api = cluster.api
    search = {
        "trials": 4,
        "metric": "val_loss",
        "mode": "min",
        "scheduler": "asha",
        "maxConcurrent": 2,
        "space": {
            "hidden": {"type": "choice", "values": ["4", "8"]},
            "learningRate": {"type": "loguniform", "min": 0.001, "max": 0.1},
        },
    }
    body = toy_trainingjob("search", epochs=2, search=search, output={"modelName": "toy-search"})
    kubectl.apply(yaml.safe_dump(body)).check()
    done = api.wait_for(TJ, "search", phase_is("Succeeded", "Failed"), "default", timeout=150)
    assert done is not None
    status = done["status"]
    assert status["phase"] == "Succeeded", (status, operator.log.read_text()[-3000:])

    trials = status["trials"]
    assert len(trials) == 4 and len({t["id"] for t in trials}) == 4
    for trial in trials:
        assert set(trial["config"]) == {"hidden", "learningRate"} and trial["config"]["hidden"] in ("4", "8")
        assert 0.001 <= float(trial["config"]["learningRate"]) <= 0.1
        assert trial["status"] in ("TERMINATED", "STOPPED", "ERROR")
    # The best is the lowest metric among the trials that trained every epoch (a trial ASHA
    # stopped at epoch 1 reports an epoch-1 metric, not comparable with a full run's).
    complete = [t for t in trials if "metric" in t and t["status"] == "TERMINATED"]
    best = status["bestTrial"]
    assert complete and best in complete
    assert best["metric"] == min(t["metric"] for t in complete)
    ready = condition(done, "Ready")
    assert ready["status"] == "True" and ready["message"].startswith("4 trials")
    assert f"hidden={best['config']['hidden']}" in ready["message"]
    # The best configuration was trained again and its model published: the ModelVersion says so.
    assert status["bestMetrics"]["val_loss"] >= 0 and status["progress"]["epoch"] == 2
    mv_name = api.wait_for(TJ, "search", lambda o: bool(o and o["status"].get("modelVersion")), "default")
    assert mv_name is not None
    mv = api.get("foresight.dev/v1alpha1/modelversions", mv_name["status"]["modelVersion"], "default")
    assert str(mv["spec"]["config"]["hyperparameters"]["hidden"]) == best["config"]["hidden"]
    assert mv["spec"]["config"]["search"]["bestConfig"]["hidden"] == int(best["config"]["hidden"])
