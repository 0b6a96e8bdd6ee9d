"""The real operator process (``foresight operator``) against the API emulator, kubectl and the kubelet.

A TrainingJob applied with kubectl gets a ConfigMap and a Job (owner, labels, resources); the
test kubelet runs the toy training; the status reaches Succeeded with the result read from the
pod's termination message; ``kubectl get`` / ``describe`` show columns and events; an invalid
TrainingJob gets a clear condition while a valid one still runs; ``kubectl delete`` removes the
children. The operator's API calls stay within manifests/operator-api-calls.yaml.
"""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import yaml

from tests.cluster.emulator import Cluster
from tests.cluster.kubectl import Kubectl
from tests.cluster.kubelet import Kubelet

pytestmark = pytest.mark.e2e

REPO = pathlib.Path(__file__).resolve().parents[2]
TJ = "foresight.dev/v1alpha1/trainingjobs"
SELECTOR = "app.kubernetes.io/managed-by=foresight,foresight.dev/kind=TrainingJob,foresight.dev/name={}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OperatorProcess:
    """``foresight operator`` as a subprocess against one cluster; start / kill / stop, log file."""

    def __init__(self, cluster: Cluster, workdir: pathlib.Path) -> None:
        self.cluster = cluster
        self.log = workdir / "operator.log"
        self.metrics_port = free_port()
        self.liveness_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait_ready: bool = True) -> OperatorProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "KUBE"))}
        env.update(
            KUBECONFIG=str(self.cluster.kubeconfig),
            FORESIGHT_RUNTIME_IMAGE="foresight-runtime:e2e",
            FORESIGHT_RETRY_DELAY="1",
            FORESIGHT_WATCH_SERVER_TIMEOUT="20",
            PYTHONUNBUFFERED="1",  # the log must survive a SIGKILL
        )
        cmd = [
            str(pathlib.Path(sys.prefix) / "bin" / "foresight"), "operator", "--all-namespaces",
            "--metrics-host", "127.0.0.1", "--metrics-port", str(self.metrics_port),
            "--liveness", f"http://127.0.0.1:{self.liveness_port}/healthz",
        ]  # fmt: skip
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        if wait_ready:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
            try:
                if requests.get(self.url("/readyz"), timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"operator not ready in {timeout}s:\n{self.log.read_text()[-4000:]}")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.metrics_port}{path}"

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as when a node dies."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture
def crds(kubectl: Kubectl) -> None:
    kubectl("apply", "--validate=false", "-k", str(REPO / "crds")).check()


@pytest.fixture
def operator(cluster: Cluster, crds: None, tmp_path: pathlib.Path) -> Iterator[OperatorProcess]:
    op = OperatorProcess(cluster, tmp_path).start()
    try:
        yield op
    finally:
        op.stop()


def toy_trainingjob(name: str, **spec: Any) -> dict[str, Any]:
    """A TrainingJob running the runtime's seconds-long ``toy`` task (selected by annotation)."""
    body: dict[str, Any] = {
        "apiVersion": "foresight.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name, "annotations": {"foresight.dev/builtin-task": "toy"}},
        "spec": {
            "task": "forecast",
            "dataset": {"uri": "pvc://foresight-artifacts/datasets/unused.npz"},
            "epochs": 2,
            "hyperparameters": {"samples": "256", "hidden": "8"},
            "resources": {"cpu": "250m", "memory": "512Mi", "gpu": 1},
            "placement": {"nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-H100"}},
            "runPolicy": {"backoffLimit": 1},
            **spec,
        },
    }
    return body


def phase_is(*phases: str) -> Any:
    return lambda o: ((o or {}).get("status") or {}).get("phase") in phases


def condition(obj: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == ctype)


def allowed_calls() -> set[tuple[str, str]]:
    doc = yaml.safe_load((REPO / "manifests" / "operator-api-calls.yaml").read_text())
    return {(verb, res) for entry in doc["calls"] for res in entry["resources"] for verb in entry["verbs"]}


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
    deadline = time.monotonic() + 30
    while True:  # kopf posts events from a background queue
        described = kubectl("describe", "tj", "toy").check().stdout
        if "JobCreated" in described and "Succeeded" in described.split("Events:")[-1]:
            break
        assert time.monotonic() < deadline, described
        time.sleep(0.2)
    assert "UnsupportedURI" in kubectl("describe", "tj", "bad-dataset").check().stdout.split("Events:")[-1]

    metrics = requests.get(operator.url("/metrics"), timeout=5).text
    assert 'foresight_operator_children_created_total{child="Job",kind="TrainingJob"} 1.0' in metrics
    assert 'foresight_operator_reconciles_total{kind="TrainingJob",result="invalid"}' in metrics
    assert requests.get(f"http://127.0.0.1:{operator.liveness_port}/healthz", timeout=5).status_code == 200

    kubectl("delete", "tj", "toy", "--wait=false").check()
    api.wait_for("batch/v1/jobs", "toy-train", lambda o: o is None, "default", timeout=30)
    api.wait_for("v1/configmaps", "toy-config", lambda o: o is None, "default", timeout=30)
    assert api.list("v1/pods", "default", label_selector=SELECTOR.format("toy")) == []

    ours = [
        r
        for r in cluster.requests()
        if r.user_agent.startswith(("kopf", "foresight-operator")) and r.resource
    ]
    made = {(r.verb, r.resource + (f"/{r.subresource}" if r.subresource else "")) for r in ours}
    assert made <= allowed_calls(), made - allowed_calls()


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
