"""ClassifierService handler logic against the in-process API emulator (no kopf loop, no kubelet).

reconcile / sync_status / read_stats are called directly with a real KubeClient over HTTP, so
what is asserted is what the API server holds: a missing Secret stops before any child exists,
children appear owned and labelled, a repeat makes no writes, spec changes reach the ConfigMap,
the Deployment and the HPA, and the stats of a ready pod land in the status. With backend onnx,
a missing or unready ModelVersion, or one without an ONNX file on a PVC, stops before any child
exists; a Ready one's claim is mounted where the rendered config points the service.
"""

from __future__ import annotations

import base64
import copy
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

_ROOT = str(Path(__file__).resolve().parents[3])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from foresight_operator.builders.classifierservice import CONFIG_HASH_ANNOTATION  # noqa: E402
from foresight_operator.handlers.classifierservice import (  # noqa: E402
    classifier_status,
    read_stats,
    reconcile,
    sync_status,
)
from foresight_operator.handlers.context import HandlerContext  # noqa: E402
from foresight_operator.reconcile import WaitError, owner_labels  # noqa: E402

from tests.cluster.emulator import Cluster  # noqa: E402
from tests.unit.operator.conftest import handler_context  # noqa: E402

REPO = Path(_ROOT)
CS = "foresight.dev/v1alpha1/classifierservices"
NS = "photos"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EXAMPLE = yaml.safe_load((REPO / "examples" / "classifierservice.yaml").read_text())


@pytest.fixture
def ctx(cluster: Cluster, events: list[tuple[str, str, str]]) -> HandlerContext:
    return handler_context(cluster, events, T0)


def apply_example(cluster: Cluster, **spec: Any) -> dict[str, Any]:
    body = copy.deepcopy(EXAMPLE)
    body["spec"].update(spec)
    return cluster.api.create(CS, body, NS)


def create_secret(cluster: Cluster, name: str, **data: str) -> None:
    encoded = {k.replace("_", "-"): base64.b64encode(v.encode()).decode() for k, v in data.items()}
    cluster.api.create("v1/secrets", {"metadata": {"name": name}, "data": encoded}, NS)


def cond(obj: Mapping[str, Any], ctype: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == ctype)


def writes(cluster: Cluster, since: int) -> list[tuple[str, str]]:
    return [
        (r.verb, r.resource)
        for r in cluster.requests()[since:]
        if r.verb in ("create", "patch", "update", "delete")
    ]


def test_missing_secret_is_a_clear_condition_and_no_deployment(cluster: Cluster, ctx: HandlerContext) -> None:
    body = apply_example(cluster)
    with pytest.raises(WaitError) as err:
        reconcile(ctx, body)
    assert err.value.reason == "SecretNotFound"
    cs = cluster.api.get(CS, "photo-classifier", NS)
    assert cs["status"]["phase"] == "Pending"
    ready = cond(cs, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "SecretNotFound")
    assert f"kubectl -n {NS} create secret generic dashscope --from-literal=api-key=" in ready["message"]
    for resource in ("apps/v1/deployments", "v1/configmaps", "v1/services", "v1/persistentvolumeclaims"):
        assert cluster.api.list(resource, NS) == [], resource

    # A Secret without the key is just as clear.
    create_secret(cluster, "dashscope", other="x")
    with pytest.raises(WaitError, match="has no key api-key"):
        reconcile(ctx, cluster.api.get(CS, "photo-classifier", NS))
    assert cluster.api.list("apps/v1/deployments", NS) == []


def test_children_owned_status_synced_and_a_repeat_writes_nothing(
    cluster: Cluster, ctx: HandlerContext, events: list[tuple[str, str, str]]
) -> None:
    create_secret(cluster, "dashscope", api_key="sk-test-never-logged")
    body = apply_example(cluster)
    reconcile(ctx, body)
    uid = body["metadata"]["uid"]
    made = {
        "apps/v1/deployments": "photo-classifier",
        "v1/services": "photo-classifier",
        "v1/configmaps": "photo-classifier-config",
        "v1/persistentvolumeclaims": "photo-classifier-cache",
    }
    for resource, name in made.items():
        child = cluster.api.get(resource, name, NS)
        (ref,) = child["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["uid"], ref["controller"]) == ("ClassifierService", uid, True), resource
        assert child["metadata"]["labels"] == owner_labels("ClassifierService", "photo-classifier")
    assert cluster.api.list("autoscaling/v2/horizontalpodautoscalers", NS) == []
    cs = cluster.api.get(CS, "photo-classifier", NS)
    assert cs["status"]["phase"] == "Deploying"
    assert cs["status"]["endpoint"] == "http://photo-classifier.photos.svc:8000"
    assert cs["status"]["observedGeneration"] == cs["metadata"]["generation"]
    assert (cond(cs, "Ready")["status"], cond(cs, "Ready")["reason"]) == ("False", "DeploymentNotReady")
    assert {r for _, r, _ in events} >= {"DeploymentCreated", "ServiceCreated", "ConfigMapCreated"}
    assert "sk-test-never-logged" not in repr(events) + repr(cs) + repr(cluster.api.list("v1/configmaps", NS))

    before = len(cluster.requests())
    reconcile(ctx, cluster.api.get(CS, "photo-classifier", NS))
    assert writes(cluster, before) == []

    # The Deployment becomes available (what the Deployment controller would write).
    cluster.api.patch(
        "apps/v1/deployments",
        "photo-classifier",
        {"status": {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1,
                    "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicas"}]}},
        NS,
        sub="status",
    )  # fmt: skip
    sync_status(ctx, NS, "photo-classifier")
    cs = cluster.api.get(CS, "photo-classifier", NS)
    assert (cs["status"]["phase"], cs["status"]["readyReplicas"], cs["status"]["replicas"]) == (
        "Running",
        1,
        1,
    )
    ready = cond(cs, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Available")
    assert ready["message"] == "1/1 replicas ready at http://photo-classifier.photos.svc:8000"


def test_spec_changes_reach_configmap_deployment_and_hpa(cluster: Cluster, ctx: HandlerContext) -> None:
    create_secret(cluster, "dashscope", api_key="k")
    create_secret(cluster, "redis", pw="p")
    reconcile(ctx, apply_example(cluster))
    dep0 = cluster.api.get("apps/v1/deployments", "photo-classifier", NS)

    cluster.api.patch(CS, "photo-classifier", {"spec": {"prompt": "Pick one of {categories}."}}, NS)
    reconcile(ctx, cluster.api.get(CS, "photo-classifier", NS))
    cm = cluster.api.get("v1/configmaps", "photo-classifier-config", NS)
    assert yaml.safe_load(cm["data"]["classifier.yaml"])["prompt"] == "Pick one of {categories}."
    dep1 = cluster.api.get("apps/v1/deployments", "photo-classifier", NS)
    ann = CONFIG_HASH_ANNOTATION
    assert (
        dep1["spec"]["template"]["metadata"]["annotations"][ann]
        != (dep0["spec"]["template"]["metadata"]["annotations"][ann])
    )  # the pods roll and read the new prompt

    redis = {
        "store": "redis",
        "redis": {"url": "redis://r:6379/0", "passwordSecret": {"name": "redis", "key": "pw"}},
    }
    cluster.api.patch(
        CS,
        "photo-classifier",
        {"spec": {"cache": redis, "autoscaling": {"minReplicas": 2, "maxReplicas": 5}}},
        NS,
    )
    reconcile(ctx, cluster.api.get(CS, "photo-classifier", NS))
    hpa = cluster.api.get("autoscaling/v2/horizontalpodautoscalers", "photo-classifier", NS)
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    dep2 = cluster.api.get("apps/v1/deployments", "photo-classifier", NS)
    main = dep2["spec"]["template"]["spec"]["containers"][0]
    assert "workingDir" not in main and [m["name"] for m in main["volumeMounts"]] == ["config"]
    assert dep2["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    assert dep2["spec"]["replicas"] == 1  # left to the HPA, which raises it to its minimum itself
    assert {
        "name": "FORESIGHT_REDIS_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "redis", "key": "pw"}},
    } in (main["env"])
    # The HPA owns the replica count now: a scaled Deployment is left alone.
    cluster.api.patch("apps/v1/deployments", "photo-classifier", {"spec": {"replicas": 4}}, NS)
    reconcile(ctx, cluster.api.get(CS, "photo-classifier", NS))
    assert cluster.api.get("apps/v1/deployments", "photo-classifier", NS)["spec"]["replicas"] == 4

    cluster.api.patch(CS, "photo-classifier", {"spec": {"autoscaling": None, "replicas": 3}}, NS)
    reconcile(ctx, cluster.api.get(CS, "photo-classifier", NS))
    assert cluster.api.find("autoscaling/v2/horizontalpodautoscalers", "photo-classifier", NS) is None
    assert cluster.api.get("apps/v1/deployments", "photo-classifier", NS)["spec"]["replicas"] == 3


def _pod(name: str, *, ready: bool, port: int = 8000) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": owner_labels("ClassifierService", "photo-classifier")},
        "spec": {"containers": [{"name": "classifier", "ports": [{"name": "http", "containerPort": port}]}]},
    }


def test_stats_come_from_a_ready_pod_and_land_in_the_status(cluster: Cluster, ctx: HandlerContext) -> None:
    create_secret(cluster, "dashscope", api_key="k")
    create_secret(cluster, "clients", token="client-token-1")
    body = apply_example(cluster, authTokenSecret={"name": "clients", "key": "token"})
    reconcile(ctx, body)
    calls: list[tuple[str, dict[str, str]]] = []

    def fetch(url: str, headers: Mapping[str, str]) -> dict[str, Any]:
        calls.append((url, dict(headers)))
        return {"requests": 12, "hit_rate": 0.25, "cache_hits": 2, "cache_misses": 6}

    assert read_stats(ctx, body, fetch) is None and calls == []  # no ready pod yet
    for name, ready, ip in (("a-not-ready", False, "10.0.0.9"), ("b-ready", True, "10.0.0.7")):
        cluster.api.create("v1/pods", _pod(name, ready=ready, port=8123), NS)
        cluster.api.patch(
            "v1/pods",
            name,
            {"status": {"phase": "Running", "podIP": ip,
                        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}},
            NS,
            sub="status",
        )  # fmt: skip
    stats = read_stats(ctx, body, fetch)
    assert calls == [
        (
            "http://10.0.0.7:8123/api/v1/stats/today",
            {"Accept": "application/json", "Authorization": "Bearer client-token-1"},
        )
    ]
    sync_status(ctx, NS, "photo-classifier", stats=stats)
    cs = cluster.api.get(CS, "photo-classifier", NS)
    assert (cs["status"]["requestsToday"], cs["status"]["cacheHitRate"]) == (12, 0.25)

    def broken(url: str, headers: Mapping[str, str]) -> dict[str, Any]:
        raise OSError("connection refused")

    assert read_stats(ctx, body, broken) is None  # logged, the last numbers stay


def test_status_from_a_stuck_deployment_names_the_pod_problem() -> None:
    current = {"metadata": {"generation": 2}, "status": {"phase": "Deploying"}}
    deployment = {"spec": {"replicas": 1}, "status": {"replicas": 1}}
    status = classifier_status(
        current,
        deployment,
        now=T0,
        endpoint="http://x.ns.svc:8000",
        pod_problem='pod x-1: CreateContainerConfigError: key "api-key" of secret "dashscope" not found',
    )
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert status["phase"] == "Deploying" and ready["reason"] == "DeploymentNotReady"
    assert ready["message"].startswith("0/1 replicas ready; pod x-1: CreateContainerConfigError")
    stopped = classifier_status(current, {"spec": {"replicas": 0}, "status": {}}, now=T0, endpoint=None)
    assert stopped["phase"] == "Stopped"
    bad_stats = classifier_status(current, None, now=T0, endpoint=None, stats={"requests": -1, "hit_rate": 7})
    assert "requestsToday" not in bad_stats and "cacheHitRate" not in bad_stats


# --- backend onnx: the ModelVersion -> ONNX artifact lookup ----------------------------------------

MV = "foresight.dev/v1alpha1/modelversions"
ONNX_BACKEND = {"type": "onnx", "onnx": {"modelVersion": "photo-net-v1"}}
CHILDREN = ("apps/v1/deployments", "v1/configmaps", "v1/services", "v1/persistentvolumeclaims")


def create_model_version(
    cluster: Cluster, *, framework: str, uri: str, ready: bool, onnx_uri: str | None = None
) -> None:
    cluster.api.create(
        MV,
        {
            "apiVersion": "foresight.dev/v1alpha1",
            "kind": "ModelVersion",
            "metadata": {"name": "photo-net-v1"},
            "spec": {
                "modelName": "photo-net",
                "version": "1",
                "framework": framework,
                "artifact": {"uri": uri},
            },
        },
        NS,
    )
    status: dict[str, Any] = {
        "phase": "Ready" if ready else "Verifying",
        "verified": ready,
        "conditions": [
            {
                "type": "Ready",
                "status": "True" if ready else "False",
                "reason": "Verified" if ready else "Verifying",
                "message": "verified" if ready else "Job photo-net-v1-verify verifies the artifact",
                "lastTransitionTime": "2026-03-01T11:00:00Z",
            }
        ],
    }
    if onnx_uri is not None:
        status["onnx"] = {"uri": onnx_uri, "sha256": "ab" * 32, "sizeBytes": 1234}
    cluster.api.patch(MV, "photo-net-v1", {"status": status}, NS, sub="status")


def assert_waiting_without_children(cluster: Cluster, reason: str, *phrases: str) -> None:
    cs = cluster.api.get(CS, "photo-classifier", NS)
    assert cs["status"]["phase"] == "Pending"
    ready = cond(cs, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", reason)
    for phrase in phrases:
        assert phrase in ready["message"], (phrase, ready["message"])
    for resource in CHILDREN:
        assert cluster.api.list(resource, NS) == [], resource


def test_onnx_backend_waits_for_a_missing_or_unready_model_version(
    cluster: Cluster, ctx: HandlerContext
) -> None:
    body = apply_example(cluster, backend=ONNX_BACKEND)
    with pytest.raises(WaitError) as err:
        reconcile(ctx, body)
    assert err.value.reason == "ModelVersionNotReady"
    assert_waiting_without_children(
        cluster,
        "ModelVersionNotReady",
        f"ModelVersion {NS}/photo-net-v1 not found",
        "spec.backend.onnx.modelVersion",
    )

    # It exists now, but its verification has not finished.
    create_model_version(cluster, framework="onnx", uri="pvc://models/photo-net/1/model.onnx", ready=False)
    with pytest.raises(WaitError) as err:
        reconcile(ctx, cluster.api.get(CS, "photo-classifier", NS))
    assert err.value.reason == "ModelVersionNotReady"
    assert_waiting_without_children(
        cluster, "ModelVersionNotReady", f"ModelVersion {NS}/photo-net-v1 is not Ready", "waiting"
    )


@pytest.mark.parametrize(
    ("framework", "uri", "onnx_uri", "phrases"),
    [
        # A Ready torch model that was never exported: it will not get an ONNX file by waiting.
        ("torch", "pvc://models/photo-net/1/model.pt", None, ("has no ONNX artifact", "optimize.onnx")),
        # An ONNX export that lives in S3: pods mount only PVCs.
        (
            "torch",
            "s3://models/photo-net/1/model.pt",
            "s3://models/photo-net/1/model.onnx",
            ("s3://models/photo-net/1/model.onnx is not on a PVC", "pvc://<claim>/<path>"),
        ),
    ],
    ids=["torch-without-onnx", "onnx-on-s3"],
)
def test_a_model_version_without_a_mountable_onnx_artifact_is_unsupported(
    cluster: Cluster,
    ctx: HandlerContext,
    framework: str,
    uri: str,
    onnx_uri: str | None,
    phrases: tuple[str, ...],
) -> None:
    create_model_version(cluster, framework=framework, uri=uri, ready=True, onnx_uri=onnx_uri)
    body = apply_example(cluster, backend=ONNX_BACKEND)
    with pytest.raises(WaitError) as err:
        reconcile(ctx, body)
    assert err.value.reason == "UnsupportedArtifact"
    assert_waiting_without_children(
        cluster, "UnsupportedArtifact", f"ModelVersion {NS}/photo-net-v1", *phrases
    )


@pytest.mark.parametrize(
    ("framework", "uri", "onnx_uri", "claim", "path"),
    [
        ("onnx", "pvc://models/photo-net/1/model.onnx", None, "models", "photo-net/1/model.onnx"),
        # A model directory as training publishes it (with its manifest): the ONNX file is model.onnx.
        ("onnx", "pvc://models/photo-net/1", None, "models", "photo-net/1/model.onnx"),
        (
            "torch",
            "s3://models/photo-net/1/model.pt",
            "pvc://exports/photo-net/1/model.onnx",
            "exports",
            "photo-net/1/model.onnx",
        ),
    ],
    ids=["framework-onnx", "framework-onnx-directory", "onnx-export"],
)
def test_a_ready_onnx_artifact_on_a_pvc_is_mounted_where_the_service_reads_it(
    cluster: Cluster,
    ctx: HandlerContext,
    framework: str,
    uri: str,
    onnx_uri: str | None,
    claim: str,
    path: str,
) -> None:
    create_model_version(cluster, framework=framework, uri=uri, ready=True, onnx_uri=onnx_uri)
    reconcile(ctx, apply_example(cluster, backend=ONNX_BACKEND))  # no Secret: onnx needs no API key
    dep = cluster.api.get("apps/v1/deployments", "photo-classifier", NS)
    pod = dep["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["model"]["persistentVolumeClaim"]["claimName"] == claim
    (main,) = pod["containers"]
    mount = next(m for m in main["volumeMounts"] if m["name"] == "model")
    assert mount["readOnly"] is True
    assert all(e["name"] != "DASHSCOPE_API_KEY" for e in main.get("env") or [])
    cm = cluster.api.get("v1/configmaps", "photo-classifier-config", NS)
    backend = yaml.safe_load(cm["data"]["classifier.yaml"])["backend"]
    assert backend["type"] == "onnx"
    # The file the service opens is the artifact's path inside the claim, under the mount.
    assert backend["onnx"]["modelPath"] == f"{mount['mountPath']}/{path}"
    cs = cluster.api.get(CS, "photo-classifier", NS)
    assert cs["status"]["phase"] == "Deploying"
