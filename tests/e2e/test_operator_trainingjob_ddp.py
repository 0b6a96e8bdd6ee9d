"""DDP TrainingJobs (``distributed.backend: torch``) through the real operator, the API emulator and
the test kubelet: two gloo workers on CPU train to Succeeded and end with identical weights; a
worker pod SIGKILLed mid-training is replaced and training resumes from the newest checkpoint.
Also the kubelet's side of it: Indexed Job pods named ``<job>-<index>`` that find each other
through the headless Service by DNS name.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from tests.cluster.emulator import Cluster
from tests.cluster.kubectl import Kubectl
from tests.cluster.kubelet import Kubelet
from tests.cluster.operator_process import OperatorProcess, free_port
from tests.e2e.resources import TJ, condition, phase_is
from tests.polling import wait_for

pytestmark = pytest.mark.e2e

INDEX_KEY = "batch.kubernetes.io/job-completion-index"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"


def ddp_trainingjob(name: str, port: int, *, epochs: int, samples: int, **spec: Any) -> dict[str, Any]:
    """Two DDP workers running the runtime's ``toy`` task on CPU, artifacts on a claim."""
    return {
        "apiVersion": "foresight.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {
            "name": name,
            "annotations": {
                "foresight.dev/builtin-task": "toy",
                # Every pod of the test kubelet shares 127.0.0.1: a free port instead of 29500.
                "foresight.dev/ddp-master-port": str(port),
            },
        },
        "spec": {
            "task": "forecast",
            "dataset": {"uri": "pvc://foresight-artifacts/datasets/unused.npz"},
            "epochs": epochs,
            "hyperparameters": {"samples": str(samples), "hidden": "16"},
            "resources": {"cpu": "250m", "memory": "512Mi"},
            "distributed": {"backend": "torch", "workers": 2, "joinTimeoutSeconds": 30},
            **spec,
        },
    }


def job_pods(cluster: Cluster, job: str) -> list[dict[str, Any]]:
    return cluster.api.list("v1/pods", "default", label_selector=f"{JOB_NAME_LABEL}={job}")


def terminated(pod: dict[str, Any]) -> dict[str, Any]:
    return pod["status"]["containerStatuses"][0]["state"]["terminated"]


def test_indexed_job_pods_get_hostnames_and_resolve_each_other_through_the_headless_service(
    cluster: Cluster, kubelet: Kubelet
) -> None:
    api = cluster.api
    api.create(
        "v1/services",
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "peers", "namespace": "default"},
            "spec": {"clusterIP": "None", "selector": {JOB_NAME_LABEL: "dns"}, "ports": [{"port": 1}]},
        },
        "default",
    )
    # Each pod waits until both pods' names resolve, then checks names that must not resolve.
    script = (
        "import os, socket, time\n"
        "deadline = time.monotonic() + 20\n"
        "names = ['dns-0.peers', 'dns-1.peers', 'dns-1.peers.default.svc', 'peers',\n"
        "         'peers.default.svc.cluster.local']\n"
        "while True:\n"
        "    try:\n"
        "        ips = {n: socket.getaddrinfo(n, 80)[0][4][0] for n in names}\n"
        "        break\n"
        "    except OSError:\n"
        "        assert time.monotonic() < deadline, 'peer names never resolved'\n"
        "        time.sleep(0.1)\n"
        "assert set(ips.values()) == {'127.0.0.1'}, ips\n"
        "assert socket.gethostbyname('dns-0.peers.default.svc.cluster.local') == '127.0.0.1'\n"
        "for missing in ('dns-2.peers', 'dns-0.peers.other.svc', 'nothing-here'):\n"
        "    try:\n"
        "        socket.getaddrinfo(missing, 80)\n"
        "    except OSError:\n"
        "        continue\n"
        "    raise AssertionError(missing + ' resolved')\n"
        "print('host', os.environ['HOSTNAME'], 'index', os.environ['JOB_COMPLETION_INDEX'])\n"
        "time.sleep(0.5)\n"  # stay alive so the peer sees this pod's record
    )
    api.create(
        "batch/v1/jobs",
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "dns", "namespace": "default"},
            "spec": {
                "completionMode": "Indexed",
                "completions": 2,
                "parallelism": 2,
                "backoffLimit": 0,
                "template": {
                    "spec": {
                        "subdomain": "peers",
                        "restartPolicy": "Never",
                        "containers": [{"name": "main", "image": "x", "command": ["python", "-c", script]}],
                    }
                },
            },
        },
        "default",
    )
    done = api.wait_for(
        "batch/v1/jobs",
        "dns",
        lambda o: any(c["status"] == "True" for c in ((o or {}).get("status") or {}).get("conditions") or []),
        "default",
        timeout=60,
    )
    pods = job_pods(cluster, "dns")
    logs = {p["metadata"]["name"]: kubelet.logs(p["metadata"]["name"]) for p in pods}
    assert done is not None and condition(done, "Complete")["status"] == "True", (done, logs)
    assert done["status"]["succeeded"] == 2 and done["status"]["completedIndexes"] == "0-1"
    assert sorted(p["spec"]["hostname"] for p in pods) == ["dns-0", "dns-1"]
    for pod in pods:
        index = pod["metadata"]["annotations"][INDEX_KEY]
        assert f"host dns-{index} index {index}" in logs[pod["metadata"]["name"]]
    assert kubelet.errors == []


def test_two_worker_ddp_trainingjob_trains_to_success_with_identical_weights(
    cluster: Cluster, kubectl: Kubectl, kubelet: Kubelet, operator: OperatorProcess
) -> None:
    api = cluster.api
    port = free_port()
    kubectl.apply(yaml.safe_dump(ddp_trainingjob("ddp", port, epochs=3, samples=512))).check()
    tj = api.get(TJ, "ddp", "default")

    # Children: the headless Service (owned) and an Indexed Job whose pods find rank 0 through it.
    svc = api.wait_for("v1/services", "ddp-workers", lambda o: o is not None, "default", timeout=30)
    job = api.wait_for("batch/v1/jobs", "ddp-train", lambda o: o is not None, "default", timeout=30)
    assert svc is not None and job is not None
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["selector"] == {JOB_NAME_LABEL: "ddp-train"}
    assert svc["metadata"]["ownerReferences"][0]["uid"] == tj["metadata"]["uid"]
    assert (job["spec"]["completionMode"], job["spec"]["completions"], job["spec"]["parallelism"]) == (
        "Indexed",
        2,
        2,
    )
    pod_spec = job["spec"]["template"]["spec"]
    assert pod_spec["subdomain"] == "ddp-workers"
    env = {e["name"]: e.get("value") for e in pod_spec["containers"][0]["env"]}
    assert (env["WORLD_SIZE"], env["MASTER_ADDR"], env["MASTER_PORT"]) == (
        "2",
        "ddp-train-0.ddp-workers",
        str(port),
    )
    config = yaml.safe_load(api.get("v1/configmaps", "ddp-config", "default")["data"]["train.yaml"])
    assert config["distributed"] == {"backend": "auto", "joinTimeoutSeconds": 30}

    done = api.wait_for(TJ, "ddp", phase_is("Succeeded", "Failed"), "default", timeout=120)
    pods = job_pods(cluster, "ddp-train")
    logs = "\n".join(kubelet.logs(p["metadata"]["name"])[-2000:] for p in pods)
    assert done is not None and done["status"]["phase"] == "Succeeded", (
        done,
        logs,
        operator.log.read_text()[-2000:],
    )

    # One pod per rank, each with its rank in the termination message, both with the same weights.
    docs = {int(p["metadata"]["annotations"][INDEX_KEY]): json.loads(terminated(p)["message"]) for p in pods}
    assert sorted(docs) == [0, 1], docs
    assert [docs[r]["rank"] for r in (0, 1)] == [0, 1] and {d["worldSize"] for d in docs.values()} == {2}
    assert re.fullmatch(r"[0-9a-f]{64}", docs[0]["stateSha256"])
    assert docs[0]["stateSha256"] == docs[1]["stateSha256"]
    assert "artifactUri" in docs[0] and "artifactUri" not in docs[1]  # only rank 0 exports
    # Both ranks really ran as one process group (gloo on CPU).
    for pod in pods:
        rank = pod["metadata"]["annotations"][INDEX_KEY]
        joined = f"rank {rank}/2 joined gloo process group at ddp-train-0.ddp-workers:{port}"
        assert joined in kubelet.logs(pod["metadata"]["name"])

    status = done["status"]
    assert status["progress"]["epoch"] == 3
    assert status["bestMetrics"] == {k: v for k, v in docs[0]["metrics"].items()}
    assert status["artifactUri"] == "pvc://foresight-artifacts/models/default/ddp"
    assert status["restarts"] == 0 and status.get("resumedFromEpoch") is None
    model_dir = kubelet.workdir / "pvcs" / "default" / "foresight-artifacts" / "models" / "default" / "ddp"
    assert any(model_dir.rglob("model.pt"))


def test_killed_ddp_worker_is_replaced_and_training_resumes_from_the_newest_checkpoint(
    cluster: Cluster, kubectl: Kubectl, kubelet: Kubelet, operator: OperatorProcess
) -> None:
    api = cluster.api
    epochs = 6
    body = ddp_trainingjob("resume", free_port(), epochs=epochs, samples=1600, runPolicy={"backoffLimit": 4})
    kubectl.apply(yaml.safe_dump(body)).check()
    ckpt_dir = (
        kubelet.workdir / "pvcs" / "default" / "foresight-artifacts" / "checkpoints" / "default" / "resume"
    )

    def ckpt_epochs() -> list[int]:
        return sorted(
            int(m.group(1))
            for p in ckpt_dir.glob("epoch-*.pt")
            if (m := re.match(r"epoch-(\d+)\.pt$", p.name))
        )

    def second_checkpoint() -> bool:
        if any(e >= 2 for e in ckpt_epochs()):
            return True
        tj = api.get(TJ, "resume", "default")
        assert (tj.get("status") or {}).get("phase") not in ("Succeeded", "Failed"), tj["status"]
        return False

    # Kill rank 0 (the checkpoint writer) as soon as a checkpoint of epoch >= 2 exists.
    def checkpoints_and_status() -> str:
        status = api.get(TJ, "resume", "default").get("status")
        return f"a checkpoint of epoch >= 2 (have {ckpt_epochs()}; status {status})"

    wait_for(second_checkpoint, checkpoints_and_status, timeout=90, interval=0.05)
    (rank0,) = [
        p
        for p in job_pods(cluster, "resume-train")
        if p["metadata"]["annotations"][INDEX_KEY] == "0" and p["status"].get("phase") == "Running"
    ]
    kubelet.kill(rank0["metadata"]["name"])
    at_kill = max(ckpt_epochs())
    assert at_kill < epochs, "training finished before the kill: make the epochs longer"

    done = api.wait_for(TJ, "resume", phase_is("Succeeded", "Failed"), "default", timeout=120)
    pods = job_pods(cluster, "resume-train")
    assert done is not None and done["status"]["phase"] == "Succeeded", (
        done, [kubelet.logs(p["metadata"]["name"])[-1500:] for p in pods]
    )  # fmt: skip
    killed = api.get("v1/pods", rank0["metadata"]["name"], "default")
    assert killed["status"]["phase"] == "Failed" and terminated(killed)["exitCode"] == 137

    # The replacement ranks resumed from the checkpoint that existed when rank 0 died, and went on
    # to the last epoch with identical weights.
    won = [p for p in pods if p["status"]["phase"] == "Succeeded"]
    docs = {int(p["metadata"]["annotations"][INDEX_KEY]): json.loads(terminated(p)["message"]) for p in won}
    assert sorted(docs) == [0, 1]
    assert docs[0]["resumedFromEpoch"] == docs[1]["resumedFromEpoch"] == at_kill
    assert docs[0]["epochs"] == epochs and docs[0]["stateSha256"] == docs[1]["stateSha256"]
    status = done["status"]
    assert status["resumedFromEpoch"] == at_kill
    assert status["progress"]["epoch"] == epochs
    assert status["restarts"] >= 1  # rank 0 was lost (rank 1 may have failed with it)
    new_rank0 = next(p for p in won if p["metadata"]["annotations"][INDEX_KEY] == "0")
    log = kubelet.logs(new_rank0["metadata"]["name"])
    assert '"event": "resumed"' in log and f'"epoch": {at_kill}' in log
    assert max(ckpt_epochs()) == epochs
