"""Every file in examples/ through the real operator: ``kubectl apply -f examples/`` as a user would.

The examples name a cluster's Prometheus, MinIO and GPU nodes, so no pod runs here (no kubelet):
this test checks what the operator makes of each example as written. The namespaces and the
Secrets the examples ask for are created first (placeholder credentials, the way their comments
say); then one ``kubectl apply -f examples/`` and:

- each ForecastTask gets its run Job (owned, labelled, the task's resources, GPU request and
  placement) and the ConfigMap it mounts;
- the DDP TrainingJob gets an Indexed Job of two GPU workers and their headless Service, with the
  S3 credentials only as Secret references; the classifier TrainingJob a one-pod Job with its
  run policy; the distillation TrainingJob waits (TeacherNotFound) for its teacher ModelVersion;
- the ModelVersion gets its verify Job; the ClassifierService its Deployment, Service, ConfigMap
  and cache PVC; each ModelLibrary with its source at hand gets its fetch Job (an s3 source's
  credentials as Secret references), the ConfigMap one waits for its ConfigMap saying how to make
  it; the ABExperiment is accepted;
- ``kubectl get foresight -A`` lists all of them, and ``kubectl delete -f examples/`` removes every
  resource and, by garbage collection, every child.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.emulator import Cluster
from tests.cluster.kubectl import Kubectl
from tests.cluster.operator_process import REPO, OperatorProcess

pytestmark = pytest.mark.e2e

EXAMPLES = REPO / "examples"
PLURALS = {
    "ForecastTask": "forecasttasks",
    "TrainingJob": "trainingjobs",
    "ModelVersion": "modelversions",
    "ModelLibrary": "modellibraries",
    "ABExperiment": "abexperiments",
    "ClassifierService": "classifierservices",
}
CHILD_TYPES = (
    "batch/v1/jobs", "v1/services", "v1/configmaps", "apps/v1/deployments", "v1/persistentvolumeclaims",
)  # fmt: skip
# Placeholders only: these never reach a real service, and no test fixture holds a real key.
SECRETS = {
    ("ml-platform", "foresight-s3"): {"accessKey": "example-access", "secretKey": "example-secret-value"},
    ("photos", "dashscope"): {"api-key": "sk-example-placeholder"},
    ("ml-platform", "library-reader"): {"accessKey": "example-reader", "secretKey": "example-reader-secret"},
}
Obj = dict[str, Any]


def example_docs() -> list[Obj]:
    docs = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def resource(kind: str) -> str:
    return f"foresight.dev/v1alpha1/{PLURALS[kind]}"


def children(cluster: Cluster, kind: str, name: str, namespace: str) -> dict[str, list[Obj]]:
    selector = f"app.kubernetes.io/managed-by=foresight,foresight.dev/kind={kind},foresight.dev/name={name}"
    return {t: cluster.api.list(t, namespace, label_selector=selector) for t in CHILD_TYPES}


def owned_by(child: Obj, owner: Obj) -> bool:
    refs = child["metadata"].get("ownerReferences") or []
    return [(r["kind"], r["name"], r["uid"]) for r in refs] == [
        (owner["kind"], owner["metadata"]["name"], owner["metadata"]["uid"])
    ]


def pod_spec(job: Obj) -> Obj:
    return dict(job["spec"]["template"]["spec"])


def condition(obj: Obj | None, ctype: str) -> Obj | None:
    conds = ((obj or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conds if c["type"] == ctype), None)


def test_kubectl_apply_of_every_example_gets_its_children_and_delete_removes_them(
    cluster: Cluster, kubectl: Kubectl, operator: OperatorProcess, tmp_path: Path
) -> None:
    api = cluster.api
    docs = example_docs()
    assert {d["kind"] for d in docs} == set(PLURALS), "an example per kind"

    def create(*args: str) -> None:
        # kubectl's generators send protobuf, which the emulator does not speak: generate, then apply.
        made = kubectl("create", *args, "--dry-run=client", "-o", "yaml").check()
        kubectl.apply(made.stdout).check()

    for ns in sorted({d["metadata"]["namespace"] for d in docs}):
        create("namespace", ns)
    for (ns, name), data in SECRETS.items():
        create("secret", "generic", name, "-n", ns, *(f"--from-literal={k}={v}" for k, v in data.items()))

    kubectl("apply", "--validate=false", "-f", str(EXAMPLES)).check()

    def wait_children(doc: Obj, want: dict[str, int]) -> tuple[Obj, dict[str, list[Obj]]]:
        kind, meta = doc["kind"], doc["metadata"]

        def enough(_: Obj | None) -> bool:
            found = children(cluster, kind, meta["name"], meta["namespace"])
            return all(len(found[t]) >= n for t, n in want.items())

        api.wait_for(resource(kind), meta["name"], enough, meta["namespace"], timeout=60, interval=0.25)
        owner = api.get(resource(kind), meta["name"], meta["namespace"])
        found = children(cluster, kind, meta["name"], meta["namespace"])
        for objs in found.values():
            for child in objs:
                assert owned_by(child, owner), (child["metadata"], owner["metadata"])
        return owner, found

    by_name = {d["metadata"]["name"]: d for d in docs}

    # ForecastTasks: the first run's Job with the task's resources; the GPU task on its GPU nodes.
    # Next to the task's ConfigMap: its rules file (no Prometheus Operator here) and its dashboard.
    _, found = wait_children(by_name["storage-quota"], {"batch/v1/jobs": 1, "v1/configmaps": 3})
    (job,) = found["batch/v1/jobs"]
    container = pod_spec(job)["containers"][0]
    assert container["command"][:2] == ["foresight", "run"]
    assert container["resources"]["requests"] == {"cpu": "2", "memory": "4Gi"}
    maps = {cm["metadata"]["name"]: cm for cm in found["v1/configmaps"]}
    assert set(maps) == {"storage-quota-task", "storage-quota-rules", "storage-quota-dashboard"}
    task_yaml = next(iter(maps["storage-quota-task"]["data"].values()))
    assert "storage_quota_bytes" in task_yaml and "write_rate" in task_yaml
    _, found = wait_children(by_name["gpu-allocation"], {"batch/v1/jobs": 1})
    gpu_pod = pod_spec(found["batch/v1/jobs"][0])
    assert gpu_pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert gpu_pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    assert gpu_pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]

    # The DDP TrainingJob: two indexed GPU workers behind a headless Service; S3 keys by reference.
    _, found = wait_children(by_name["storage-transformer-ddp"], {"batch/v1/jobs": 1, "v1/services": 1})
    (ddp,) = found["batch/v1/jobs"]
    assert (ddp["spec"]["completionMode"], ddp["spec"]["completions"], ddp["spec"]["parallelism"]) == (
        "Indexed",
        2,
        2,
    )
    assert ddp["spec"]["activeDeadlineSeconds"] == 86400
    assert found["v1/services"][0]["spec"]["clusterIP"] == "None"
    worker = pod_spec(ddp)
    assert worker["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert worker["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    env = {e["name"]: e for e in worker["containers"][0]["env"]}
    secret_refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in env.values() if "valueFrom" in e
                   and "secretKeyRef" in e["valueFrom"]}  # fmt: skip
    assert secret_refs == {"foresight-s3"}
    # The classifier TrainingJob: one pod with its resources and run policy.
    _, found = wait_children(by_name["photo-classifier-train"], {"batch/v1/jobs": 1, "v1/configmaps": 1})
    (train,) = found["batch/v1/jobs"]
    assert train["spec"]["backoffLimit"] == 2 and "completionMode" not in train["spec"]
    assert pod_spec(train)["containers"][0]["resources"]["requests"] == {"cpu": "4", "memory": "8Gi"}

    # The distillation TrainingJob waits for its teacher ModelVersion, saying which one.
    waiting = api.wait_for(
        resource("TrainingJob"),
        "photo-classifier-distill",
        lambda o: (condition(o, "Ready") or {}).get("reason") == "TeacherNotFound",
        "photos",
        timeout=60,
    )
    assert waiting is not None
    assert "photos/photo-classifier-v1 not found" in (condition(waiting, "Ready") or {})["message"]
    assert not any(children(cluster, "TrainingJob", "photo-classifier-distill", "photos").values())

    # The ModelVersion: a verify Job reading the artifact with the store's Secret.
    _, found = wait_children(by_name["storage-forecaster-v3"], {"batch/v1/jobs": 1})
    verify = pod_spec(found["batch/v1/jobs"][0])["containers"][0]
    assert any("secretKeyRef" in (e.get("valueFrom") or {}) for e in verify.get("env", []))

    # The ClassifierService: Deployment, Service, ConfigMap (categories, prompt) and the cache PVC.
    _, found = wait_children(
        by_name["photo-classifier"],
        {"apps/v1/deployments": 1, "v1/services": 1, "v1/configmaps": 1, "v1/persistentvolumeclaims": 1},
    )
    assert found["v1/persistentvolumeclaims"][0]["spec"]["resources"]["requests"]["storage"] == "2Gi"

    # ModelLibraries: a fetch Job each, configured for the namespace's libraries in the default claim.
    for name in ("capacity-planning", "postgresql-oltp-https", "mysql-tidb"):
        _, found = wait_children(by_name[name], {"batch/v1/jobs": 1, "v1/configmaps": 1})
        (fetch,) = found["batch/v1/jobs"]
        assert fetch["metadata"]["name"] == f"{name}-fetch-g1"
        container = pod_spec(fetch)["containers"][0]
        assert container["command"][:3] == ["foresight", "library", "fetch"]
        config = yaml.safe_load(found["v1/configmaps"][0]["data"]["fetch.yaml"])
        assert (config["store"], config["prefix"]) == (
            "pvc://foresight-artifacts/",
            "modellibraries/ml-platform",
        )
    s3_env = {e["name"]: e for e in pod_spec(fetch)["containers"][0]["env"]}
    assert (
        s3_env["FORESIGHT_SOURCE_AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"]["name"] == "library-reader"
    )
    waiting = api.wait_for(
        resource("ModelLibrary"),
        "team-capacity-cases",
        lambda o: (condition(o, "Ready") or {}).get("reason") == "ConfigMapNotFound",
        "ml-platform",
        timeout=60,
    )
    assert (
        "kubectl -n ml-platform create configmap team-capacity-cases"
        in condition(waiting, "Ready")["message"]
    )
    assert not any(children(cluster, "ModelLibrary", "team-capacity-cases", "ml-platform").values())

    # ABExperiment: validated and accepted.
    doc = by_name["photo-classifier-v2-vs-v1"]
    accepted = api.wait_for(
        resource(doc["kind"]),
        "photo-classifier-v2-vs-v1",
        lambda o: (condition(o, "Accepted") or {}).get("status") == "True",
        doc["metadata"]["namespace"],
        timeout=60,
    )
    assert accepted is not None and accepted["status"]["observedGeneration"] == 1

    # The secret values are in no resource's spec or status and in no event.
    events = api.list("events.k8s.io/v1/events") + api.list("v1/events")
    for doc in docs:
        obj = api.get(resource(doc["kind"]), doc["metadata"]["name"], doc["metadata"]["namespace"])
        dumped = json.dumps(obj) + json.dumps(events)
        for data in SECRETS.values():
            for value in data.values():
                assert value not in dumped

    # kubectl lists every example in the foresight category.
    table = kubectl("get", "foresight", "-A").check().stdout
    for doc in docs:
        assert doc["metadata"]["name"] in table, table

    # Deleting the examples deletes them and, by garbage collection, all their children.
    kubectl("delete", "-f", str(EXAMPLES), "--wait=false").check()
    for doc in docs:
        meta = doc["metadata"]
        gone = api.wait_for(resource(doc["kind"]), meta["name"], lambda o: o is None, meta["namespace"], 60)
        assert gone is None, operator.log.read_text()[-3000:]
        left = children(cluster, doc["kind"], meta["name"], meta["namespace"])
        assert not any(left.values()), (doc["kind"], meta["name"], left)
