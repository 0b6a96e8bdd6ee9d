"""The test kubelet runs Jobs and Deployments as local processes and reports status like Kubernetes."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from tests.cluster.emulator import Cluster
from tests.cluster.kubectl import Kubectl
from tests.cluster.kubelet import FAILURE_COUNT_KEY, INDEX_KEY, Kubelet

pytestmark = pytest.mark.e2e

Obj = dict[str, Any]


def job(name: str, code: str, **spec: Any) -> Obj:
    container: Obj = {"name": "main", "image": "runtime", "command": ["python", "-c", code]}
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"restartPolicy": "Never", "containers": [container], **spec.pop("pod", {})},
            },
            **spec,
        },
    }


def condition(obj: Obj | None, ctype: str) -> Obj | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == ctype and cond["status"] == "True":
            return dict(cond)
    return None


def job_pods(cluster: Cluster, name: str) -> list[Obj]:
    return cluster.api.list("v1/pods", "default", label_selector=f"batch.kubernetes.io/job-name={name}")


def test_job_completes_with_termination_message_env_and_volumes(
    cluster: Cluster, kubelet: Kubelet, kubectl: Kubectl
) -> None:
    api = cluster.api
    api.create(
        "v1/configmaps", {"metadata": {"name": "cfg", "namespace": "default"}, "data": {"greeting": "hi"}}
    )
    api.create(
        "v1/secrets",
        {"metadata": {"name": "creds", "namespace": "default"}, "data": {"token": "czNjcjN0"}},  # "s3cr3t"
    )
    code = (
        "import json, os, pathlib\n"
        "pathlib.Path('/data/out.txt').write_text(os.environ['TOKEN'] + ' ' + os.environ['GREETING'])\n"
        "msg = open('/etc/cfg/greeting').read() + ' from ' + os.environ['POD']\n"
        "open('/dev/termination-log', 'w').write(msg)\n"
        "print('mounts', sorted(json.loads(os.environ['KUBELET_MOUNTS'])))\n"
    )
    manifest = job(
        "hello",
        code,
        container={
            "env": [
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
                {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            ],
            "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": ""}],
            "volumeMounts": [
                {"name": "cfg", "mountPath": "/etc/cfg"},
                {"name": "data", "mountPath": "/data"},
            ],
        },
        pod={
            "volumes": [
                {"name": "cfg", "configMap": {"name": "cfg"}},
                {"name": "data", "persistentVolumeClaim": {"claimName": "store"}},
            ]
        },
    )
    manifest["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["configMapRef"] = {"name": "cfg"}
    manifest["spec"]["template"]["spec"]["containers"][0]["env"].append(
        {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}}}
    )
    api.create("batch/v1/jobs", manifest)
    # Real kubectl waits on the Job through a watch with a field selector.
    kubectl("wait", "--for=condition=complete", "job/hello", "--timeout=30s").check()
    done = api.wait_for("batch/v1/jobs", "hello", lambda j: condition(j, "Complete") is not None, "default")
    assert done is not None
    assert done["status"]["succeeded"] == 1
    assert done["status"]["startTime"] and done["status"]["completionTime"]
    (pod,) = job_pods(cluster, "hello")
    assert pod["status"]["phase"] == "Succeeded"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 0
    assert terminated["reason"] == "Completed"
    assert terminated["message"] == f"hi from {pod['metadata']['name']}"
    assert pod["metadata"]["ownerReferences"][0]["uid"] == done["metadata"]["uid"]
    assert "mounts ['/data', '/dev/termination-log', '/etc/cfg']" in kubelet.logs(pod["metadata"]["name"])
    # The claim's directory is shared by name, so a second pod of the same claim sees the file.
    pod_name = pod["metadata"]["name"]
    assert "mounts ['/data'" in kubectl("logs", pod_name).check().stdout
    jobs = kubectl("get", "jobs").check().stdout.splitlines()
    assert jobs[0].split()[:3] == ["NAME", "STATUS", "COMPLETIONS"] and jobs[1].split()[:3] == [
        "hello",
        "Complete",
        "1/1",
    ]
    pods = kubectl("get", "pods").check().stdout.splitlines()
    assert pods[1].split()[:3] == [pod_name, "0/1", "Succeeded"]
    claim_dir = kubelet.workdir / "pvcs" / "default" / "store"
    assert (claim_dir / "out.txt").read_text() == "s3cr3t hi"


def test_failing_job_retries_until_backoff_limit(cluster: Cluster, kubelet: Kubelet) -> None:
    cluster.api.create("batch/v1/jobs", job("boom", "import sys; sys.exit(3)", backoffLimit=1))
    failed = cluster.api.wait_for(
        "batch/v1/jobs", "boom", lambda j: condition(j, "Failed") is not None, "default"
    )
    cond = condition(failed, "Failed")
    assert cond is not None and cond["reason"] == "BackoffLimitExceeded"
    assert failed is not None and failed["status"]["failed"] == 2  # one try + one retry
    pods = job_pods(cluster, "boom")
    assert len(pods) == 2
    assert {p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] for p in pods} == {3}


def test_indexed_job_gets_every_index(cluster: Cluster, kubelet: Kubelet) -> None:
    code = "import os; open('/dev/termination-log','w').write('index=' + os.environ['JOB_COMPLETION_INDEX'])"
    cluster.api.create(
        "batch/v1/jobs", job("idx", code, completions=2, parallelism=2, completionMode="Indexed")
    )
    done = cluster.api.wait_for(
        "batch/v1/jobs", "idx", lambda j: condition(j, "Complete") is not None, "default"
    )
    assert done is not None and done["status"]["completedIndexes"] == "0-1"
    pods = job_pods(cluster, "idx")
    assert sorted(p["metadata"]["annotations"][INDEX_KEY] for p in pods) == ["0", "1"]
    messages = sorted(p["status"]["containerStatuses"][0]["state"]["terminated"]["message"] for p in pods)
    assert messages == ["index=0", "index=1"]


SHARD_CODE = (
    "import os, sys\n"
    "i = int(os.environ['JOB_COMPLETION_INDEX'])\n"
    "sys.exit({1: 3, 2: 2}.get(i, 0))  # index 1 fails (retryable), index 2 is bad input\n"
)
FAIL_INDEX_ON_2 = {
    "rules": [
        {"action": "FailIndex", "onExitCodes": {"containerName": "main", "operator": "In", "values": [2]}},
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
    ]
}


def test_indexed_job_retries_each_index_on_its_own_as_kubernetes_1_29_does(
    cluster: Cluster, kubelet: Kubelet
) -> None:
    spec = {"completions": 4, "parallelism": 4, "completionMode": "Indexed", "backoffLimitPerIndex": 1,
            "maxFailedIndexes": 4, "podFailurePolicy": FAIL_INDEX_ON_2}  # fmt: skip
    cluster.api.create("batch/v1/jobs", job("shards", SHARD_CODE, **spec))
    failed = cluster.api.wait_for(
        "batch/v1/jobs", "shards", lambda j: condition(j, "Failed") is not None, "default"
    )
    cond = condition(failed, "Failed")
    assert cond is not None and cond["reason"] == "FailedIndexes", failed
    assert failed is not None
    status = failed["status"]
    assert (status["completedIndexes"], status["failedIndexes"], status["succeeded"]) == ("0,3", "1-2", 2)
    per_index: dict[str, list[Obj]] = {}
    for p in job_pods(cluster, "shards"):
        per_index.setdefault(p["metadata"]["annotations"][INDEX_KEY], []).append(p)
    assert {i: len(ps) for i, ps in per_index.items()} == {"0": 1, "1": 2, "2": 1, "3": 1}
    counts = sorted(p["metadata"]["annotations"][FAILURE_COUNT_KEY] for p in per_index["1"])
    assert counts == ["0", "1"]  # the retry knows it is one
    assert status["failed"] == 3


def test_more_failed_indexes_than_allowed_fail_the_job_and_stop_the_rest(
    cluster: Cluster, kubelet: Kubelet
) -> None:
    code = "import os, sys, time\nif os.environ['JOB_COMPLETION_INDEX'] == '0': sys.exit(2)\ntime.sleep(60)"
    spec = {"completions": 2, "parallelism": 2, "completionMode": "Indexed", "backoffLimitPerIndex": 3,
            "maxFailedIndexes": 0, "podFailurePolicy": FAIL_INDEX_ON_2}  # fmt: skip
    cluster.api.create("batch/v1/jobs", job("strict", code, **spec))
    failed = cluster.api.wait_for(
        "batch/v1/jobs", "strict", lambda j: condition(j, "Failed") is not None, "default"
    )
    cond = condition(failed, "Failed")
    assert cond is not None and cond["reason"] == "MaxFailedIndexesExceeded", failed
    cluster.api.wait_for(
        "v1/pods", "x",
        lambda _: all(p["status"].get("phase") != "Running" for p in job_pods(cluster, "strict")), "default",
    )  # fmt: skip


def test_a_fail_job_rule_ends_the_job_at_once(cluster: Cluster, kubelet: Kubelet) -> None:
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [10]}}]}
    cluster.api.create("batch/v1/jobs", job("fatal", "import sys; sys.exit(10)", backoffLimit=5,
                                            podFailurePolicy=policy))  # fmt: skip
    failed = cluster.api.wait_for(
        "batch/v1/jobs", "fatal", lambda j: condition(j, "Failed") is not None, "default"
    )
    cond = condition(failed, "Failed")
    assert cond is not None and cond["reason"] == "PodFailurePolicy"
    assert len(job_pods(cluster, "fatal")) == 1  # not retried


def test_active_deadline_fails_the_job(cluster: Cluster, kubelet: Kubelet) -> None:
    cluster.api.create("batch/v1/jobs", job("slow", "import time; time.sleep(60)", activeDeadlineSeconds=1))
    failed = cluster.api.wait_for(
        "batch/v1/jobs", "slow", lambda j: condition(j, "Failed") is not None, "default"
    )
    cond = condition(failed, "Failed")
    assert cond is not None and cond["reason"] == "DeadlineExceeded"
    cluster.api.wait_for("v1/pods", "x", lambda _: not job_pods(cluster, "slow"), "default")


def test_suspended_job_runs_only_after_resume(cluster: Cluster, kubelet: Kubelet) -> None:
    cluster.api.create("batch/v1/jobs", job("later", "pass", suspend=True))
    suspended = cluster.api.wait_for(
        "batch/v1/jobs", "later", lambda j: condition(j, "Suspended") is not None, "default"
    )
    assert suspended is not None and suspended["status"].get("active") == 0
    assert job_pods(cluster, "later") == []
    cluster.api.patch("batch/v1/jobs", "later", {"spec": {"suspend": False}}, "default")
    done = cluster.api.wait_for(
        "batch/v1/jobs", "later", lambda j: condition(j, "Complete") is not None, "default"
    )
    assert condition(done, "Suspended") is None
    assert len(job_pods(cluster, "later")) == 1


def test_finished_job_is_deleted_after_its_ttl(cluster: Cluster, kubelet: Kubelet) -> None:
    cluster.api.create("batch/v1/jobs", job("brief", "pass", ttlSecondsAfterFinished=0))
    cluster.api.wait_for("batch/v1/jobs", "brief", lambda j: j is None, "default")
    # Its pods are garbage-collected with it (owner references).
    cluster.api.wait_for("v1/pods", "x", lambda _: not job_pods(cluster, "brief"), "default")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SERVER = """
import http.server, socket, sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


class Server(http.server.HTTPServer):
    def server_bind(self):
        # Every replica binds the same port (all pods share 127.0.0.1), as Pods would on their own IPs.
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


Server(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def deployment(name: str, replicas: int, probe_port: int, server_port: int) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "runtime",
                            "command": ["python", "-c", SERVER, "$(PORT)"],
                            "env": [{"name": "PORT", "value": str(server_port)}],
                            "ports": [{"name": "http", "containerPort": probe_port}],
                            "readinessProbe": {"httpGet": {"path": "/", "port": "http"}},
                        }
                    ]
                },
            },
        },
    }


def test_deployment_keeps_ready_replicas_and_replaces_lost_pods(cluster: Cluster, kubelet: Kubelet) -> None:
    port = free_port()
    cluster.api.create("apps/v1/deployments", deployment("web", 2, port, port))
    ready = cluster.api.wait_for(
        "apps/v1/deployments",
        "web",
        lambda d: ((d or {}).get("status") or {}).get("readyReplicas") == 2,
        "default",
    )
    assert ready is not None and condition(ready, "Available") is not None
    assert ready["status"]["availableReplicas"] == 2
    pods = cluster.api.list("v1/pods", "default", label_selector="app=web")
    assert [p["status"]["phase"] for p in pods] == ["Running", "Running"]
    for pod in pods:
        assert pod["metadata"]["name"].startswith("web-")
        assert pod["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
        assert pod["status"]["podIP"] == "127.0.0.1"
    # Losing a pod: the controller replaces it and the Deployment gets back to 2 ready.
    lost = pods[0]["metadata"]["name"]
    kubelet.kill(lost)
    cluster.api.wait_for("v1/pods", lost, lambda p: p is None, "default")

    def back_to_two(d: Obj | None) -> bool:
        names = {
            p["metadata"]["name"] for p in cluster.api.list("v1/pods", "default", label_selector="app=web")
        }
        return (
            ((d or {}).get("status") or {}).get("readyReplicas") == 2
            and lost not in names
            and len(names) == 2
        )

    cluster.api.wait_for("apps/v1/deployments", "web", back_to_two, "default")


def test_readiness_probe_gates_ready(cluster: Cluster, kubelet: Kubelet) -> None:
    # The server listens on one port, the probe asks another where nobody answers: never ready.
    cluster.api.create("apps/v1/deployments", deployment("deaf", 1, free_port(), free_port()))

    def running(_: Obj | None) -> bool:
        pods = cluster.api.list("v1/pods", "default", label_selector="app=deaf")
        return len(pods) == 1 and (pods[0].get("status") or {}).get("phase") == "Running"

    cluster.api.wait_for("apps/v1/deployments", "deaf", running, "default")
    (pod,) = cluster.api.list("v1/pods", "default", label_selector="app=deaf")
    ready = [c for c in pod["status"]["conditions"] if c["type"] == "Ready"]
    assert ready[0]["status"] == "False"
    deploy = cluster.api.get("apps/v1/deployments", "deaf", "default")
    assert deploy["status"]["readyReplicas"] == 0
    assert condition(deploy, "Available") is None


def test_config_map_volumes_follow_their_config_map_and_name_local_paths(
    cluster: Cluster, kubelet: Kubelet
) -> None:
    """A running pod sees a ConfigMap change without a restart (an optional one that appears too), and
    a path in a ConfigMap file under another volume's mount points at that volume's local directory."""
    api = cluster.api
    api.create(
        "v1/configmaps",
        {
            "metadata": {"name": "app", "namespace": "default"},
            "data": {"app.yaml": "model: /models/m.onnx\n"},
        },
    )
    # The pod prints its mounted files every 0.2 s; its log tells what it saw and when.
    code = (
        "import pathlib, time\n"
        "while True:\n"
        "    cfg = pathlib.Path('/etc/app/app.yaml').read_text().strip()\n"
        "    model = cfg.split(': ', 1)[1]\n"
        "    split = pathlib.Path('/etc/split/split.json')\n"
        "    print('seen', cfg, pathlib.Path(model).is_file(), split.read_text() if split.exists() else '-',"
        " flush=True)\n"
        "    time.sleep(0.2)\n"
    )
    container = {
        "name": "main", "image": "runtime", "command": ["python", "-c", code],
        "volumeMounts": [{"name": "app", "mountPath": "/etc/app"},
                         {"name": "split", "mountPath": "/etc/split"},
                         {"name": "models", "mountPath": "/models"}],
    }  # fmt: skip
    volumes = [
        {"name": "app", "configMap": {"name": "app"}},
        {"name": "split", "configMap": {"name": "split", "optional": True}},
        {"name": "models", "persistentVolumeClaim": {"claimName": "models"}},
    ]
    claim = kubelet.workdir / "pvcs" / "default" / "models"
    claim.mkdir(parents=True)
    (claim / "m.onnx").write_bytes(b"onnx")
    body = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "cfg", "namespace": "default"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "cfg"}},
                 "template": {"metadata": {"labels": {"app": "cfg"}},
                              "spec": {"containers": [container], "volumes": volumes}}},
    }  # fmt: skip
    api.create("apps/v1/deployments", body)

    def log_has(text: str) -> bool:
        pods = api.list("v1/pods", "default", label_selector="app=cfg")
        return len(pods) == 1 and text in kubelet.logs(pods[0]["metadata"]["name"])

    def wait_log(text: str) -> None:
        api.wait_for(
            "apps/v1/deployments", "cfg", lambda _: log_has(text), "default", timeout=30, interval=0.2
        )

    wait_log(f"seen model: {claim}/m.onnx True -")  # the path in the file is the claim's directory
    (pod,) = api.list("v1/pods", "default", label_selector="app=cfg")
    api.create(
        "v1/configmaps", {"metadata": {"name": "split", "namespace": "default"}, "data": {"split.json": "A"}}
    )
    wait_log("True A")
    api.patch("v1/configmaps", "split", {"data": {"split.json": "B"}}, "default")
    wait_log("True B")
    api.delete("v1/configmaps", "split", "default")
    wait_log("True -")
    (same,) = api.list("v1/pods", "default", label_selector="app=cfg")
    assert same["metadata"]["uid"] == pod["metadata"]["uid"]  # no restart: the files moved under it
