"""The real operator process (``foresight operator``) against the API emulator, kubectl and the kubelet.

A TrainingJob applied with kubectl gets a ConfigMap and a Job (owner, labels, resources); the
test kubelet runs the toy training; the status reaches Succeeded with the result read from the
pod's termination message; ``kubectl get`` / ``describe`` show columns and events; an invalid
TrainingJob gets a clear condition while a valid one still runs; ``kubectl delete`` removes the
children.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
import yaml

from tests.cluster.emulator import Cluster
from tests.cluster.kubectl import Kubectl
from tests.cluster.kubelet import Kubelet
from tests.cluster.operator_process import OperatorProcess
from tests.e2e.resources import SELECTOR, TJ, condition, phase_is, toy_trainingjob
from tests.polling import wait_for

pytestmark = pytest.mark.e2e


def test_trainingjob_runs_to_success_through_kubectl_kubelet_and_operator(
    cluster: Cluster, kubectl: Kubectl, kubelet: Kubelet, operator: OperatorProcess
) -> None:
    api = cluster.api
    bad = toy_trainingjob("bad-dataset")
    del bad["metadata"]["annotations"]
    bad["spec"]["dataset"] = {"uri": "file:///data/panel.npz"}
    kubectl.apply(yaml.safe_dump_all([toy_trainingjob("toy"), bad])).check()
    tj = api.get(TJ, "toy", "default")

    # Children: a ConfigMap with the TrainConfig and a Job, owned by the TrainingJob and labelled.
    job = api.wait_for("batch/v1/jobs", "toy-train", lambda o: o is not None, "default", timeout=30)
    assert job is not None
    cm = api.get("v1/configmaps", "toy-config", "default")
    for child in (job, cm):
        (ref,) = child["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == (
            "TrainingJob",
            "toy",
            tj["metadata"]["uid"],
            True,
        )
        assert child["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "foresight"
        assert child["metadata"]["labels"]["foresight.dev/name"] == "toy"
    config = yaml.safe_load(cm["data"]["train.yaml"])
    assert (
        config["task"] == "toy"
        and config["epochs"] == 2
        and config["output"] == {"uri": "models/default/toy"}
    )
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["resources"]["requests"] == {"cpu": "250m", "memory": "512Mi", "nvidia.com/gpu": "1"}
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100"}
    assert container["command"] == ["foresight", "train", "--config", "/etc/foresight/config/train.yaml"]
    assert job["spec"]["backoffLimit"] == 1

    done = api.wait_for(TJ, "toy", phase_is("Succeeded", "Failed"), "default", timeout=150)
    assert done is not None
    assert done["status"]["phase"] == "Succeeded", (done["status"], operator.log.read_text()[-3000:])
    status = done["status"]
    assert status["progress"]["epoch"] == 2
    assert status["bestMetrics"]["val_loss"] >= 0 and "rmse" in status["bestMetrics"]
    assert status["artifactUri"] == "pvc://foresight-artifacts/models/default/toy"
    assert status["observedGeneration"] == done["metadata"]["generation"]
    ready = condition(done, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Succeeded") and "val_loss=" in ready["message"]
    assert condition(done, "Progressing")["status"] == "False"
    # The model really is on the (kubelet's) claim, written by the training pod.
    model_dir = kubelet.workdir / "pvcs" / "default" / "foresight-artifacts" / "models" / "default" / "toy"
    assert any(model_dir.rglob("model.pt")), list(kubelet.workdir.rglob("*"))[:50]

    # The invalid one: a clear, permanent condition; no children; the valid one was not held up.
    invalid = api.wait_for(TJ, "bad-dataset", phase_is("Failed"), "default", timeout=30)
    assert invalid is not None
    cond = condition(invalid, "Ready")
    assert (cond["status"], cond["reason"]) == ("False", "UnsupportedURI")
    assert "spec.dataset.uri" in cond["message"] and "pvc://" in cond["message"]
    assert api.find("batch/v1/jobs", "bad-dataset-train", "default") is None

    got = kubectl("get", "tj").check().stdout
    header, *rows = got.splitlines()
    assert header.split()[:4] == ["NAME", "READY", "PHASE", "EPOCH"]
    assert next(r.split()[:4] for r in rows if r.startswith("toy ")) == ["toy", "True", "Succeeded", "2"]
    assert next(r.split()[:3] for r in rows if r.startswith("bad-dataset")) == [
        "bad-dataset",
        "False",
        "Failed",
    ]

    wait_for(  # kopf posts events from a background queue
        lambda: kubectl("describe", "tj", "toy").check().stdout,
        "JobCreated and Succeeded among toy's events",
        timeout=30,
        until=lambda described: "JobCreated" in described and "Succeeded" in described.split("Events:")[-1],
    )
    assert "UnsupportedURI" in kubectl("describe", "tj", "bad-dataset").check().stdout.split("Events:")[-1]

    metrics = requests.get(operator.url("/metrics"), timeout=5).text
    assert 'foresight_operator_children_created_total{child="Job",kind="TrainingJob"} 1.0' in metrics
    assert 'foresight_operator_reconciles_total{kind="TrainingJob",result="invalid"}' in metrics
    assert requests.get(f"http://127.0.0.1:{operator.liveness_port}/healthz", timeout=5).status_code == 200

    kubectl("delete", "tj", "toy", "--wait=false").check()
    api.wait_for("batch/v1/jobs", "toy-train", lambda o: o is None, "default", timeout=30)
    api.wait_for("v1/configmaps", "toy-config", lambda o: o is None, "default", timeout=30)
    assert api.list("v1/pods", "default", label_selector=SELECTOR.format("toy")) == []


def test_suspended_trainingjob_waits_and_resumes(
    cluster: Cluster, kubectl: Kubectl, kubelet: Kubelet, operator: OperatorProcess
) -> None:
    api = cluster.api
    kubectl.apply(yaml.safe_dump(toy_trainingjob("later", epochs=1, runPolicy={"suspend": True}))).check()
    held = api.wait_for(TJ, "later", phase_is("Suspended"), "default", timeout=30)
    assert held is not None and condition(held, "Ready")["reason"] == "Suspended"
    assert api.get("batch/v1/jobs", "later-train", "default")["spec"]["suspend"] is True
    assert api.list("v1/pods", "default") == []
    kubectl("patch", "tj", "later", "--type=merge", "-p", '{"spec":{"runPolicy":{"suspend":false}}}').check()
    done = api.wait_for(TJ, "later", phase_is("Succeeded", "Failed"), "default", timeout=150)
    assert done is not None and done["status"]["phase"] == "Succeeded", done
    assert done["status"]["observedGeneration"] == 2


def test_running_trainingjob_shows_epoch_metrics_and_eta_in_status_and_metrics(
    cluster: Cluster, kubectl: Kubectl, kubelet: Kubelet, operator: OperatorProcess
) -> None:
    api = cluster.api
    # About a second per epoch on these CPUs: long enough to be seen while it runs.
    body = toy_trainingjob("slow", epochs=8, hyperparameters={"samples": "60000", "hidden": "8"})
    kubectl.apply(yaml.safe_dump(body)).check()

    def mid_training(o: dict[str, Any] | None) -> bool:
        status = (o or {}).get("status") or {}
        epoch = int((status.get("progress") or {}).get("epoch") or 0)
        return status.get("phase") == "Running" and 0 < epoch < 8

    seen = api.wait_for(TJ, "slow", mid_training, "default", timeout=120, interval=0.2)
    assert seen is not None
    progress = seen["status"]["progress"]
    assert progress["epochs"] == 8 and progress["etaSeconds"] >= 0
    assert {"loss", "val_loss"} <= set(progress["metrics"])
    # kubectl get shows the epoch column while it trains; /metrics exports the same progress.
    table = kubectl("get", "tj", "slow").check().stdout
    assert "Running" in table, table
    metrics = requests.get(operator.url("/metrics"), timeout=5).text
    assert 'foresight_trainingjob_epochs{name="slow",namespace="default"} 8.0' in metrics
    assert 'foresight_resource_ready{kind="TrainingJob",name="slow",namespace="default"} 0.0' in metrics

    done = api.wait_for(TJ, "slow", phase_is("Succeeded", "Failed"), "default", timeout=120)
    assert done is not None and done["status"]["phase"] == "Succeeded", done["status"]
    assert done["status"]["progress"]["epoch"] == 8
    ready = 'foresight_resource_ready{kind="TrainingJob",name="slow",namespace="default"} 1.0'
    wait_for(lambda: ready in requests.get(operator.url("/metrics"), timeout=5).text, f"{ready} on /metrics",
             timeout=10)  # fmt: skip


def test_suspending_a_running_trainingjob_stops_its_pod_and_resuming_continues_from_the_checkpoint(
    cluster: Cluster, kubectl: Kubectl, kubelet: Kubelet, operator: OperatorProcess
) -> None:
    """As a Kubernetes Job: suspend deletes the active pod; unsuspend starts a new one, which
    resumes from the newest checkpoint instead of starting over."""
    api = cluster.api
    body = toy_trainingjob(
        "pause", epochs=8, hyperparameters={"samples": "60000", "hidden": "8"}, checkpoint={"everyEpochs": 1}
    )
    kubectl.apply(yaml.safe_dump(body)).check()
    two = api.wait_for(TJ, "pause", lambda o: int(((o or {}).get("status") or {}).get("progress", {}).get(
        "epoch") or 0) >= 2, "default", timeout=120, interval=0.2)  # fmt: skip
    assert two is not None and two["status"]["phase"] == "Running"
    kubectl("patch", "tj", "pause", "--type=merge", "-p", '{"spec":{"runPolicy":{"suspend":true}}}').check()
    held = api.wait_for(TJ, "pause", phase_is("Suspended"), "default", timeout=30)
    assert held is not None and condition(held, "Ready")["reason"] == "Suspended"
    pods = "batch.kubernetes.io/job-name=pause-train"
    wait_for(lambda: not api.list("v1/pods", "default", label_selector=pods), "the suspended Job's pod to go",
             timeout=30)  # fmt: skip

    kubectl("patch", "tj", "pause", "--type=merge", "-p", '{"spec":{"runPolicy":{"suspend":false}}}').check()
    done = api.wait_for(TJ, "pause", phase_is("Succeeded", "Failed"), "default", timeout=150)
    assert done is not None and done["status"]["phase"] == "Succeeded", done["status"]
    resumed = done["status"]["resumedFromEpoch"]
    # It continued from a checkpoint taken at or after epoch 2 (status had shown epoch 2 done),
    # not from scratch, and trained the remaining epochs only.
    assert 2 <= resumed < 8, resumed
    assert done["status"]["progress"]["epoch"] == 8
