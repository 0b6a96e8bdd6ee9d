"""API-server semantics of the emulator: watch, selectors, patches, garbage collection, finalizers."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import yaml

from tests.cluster.emulator import ApiClientError, Cluster
from tests.cluster.operator_process import REPO

pytestmark = pytest.mark.e2e

Obj = dict[str, Any]


def configmap(name: str, labels: dict[str, str] | None = None, owner: Obj | None = None, **meta: Any) -> Obj:
    metadata: Obj = {"name": name, "namespace": "default", "labels": labels or {}, **meta}
    if owner is not None:
        metadata["ownerReferences"] = [
            {
                "apiVersion": owner["apiVersion"],
                "kind": owner["kind"],
                "name": owner["metadata"]["name"],
                "uid": owner["metadata"]["uid"],
                "blockOwnerDeletion": True,
            }
        ]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {"k": "v"}}


def watch_events(cluster: Cluster, path: str, **params: str) -> list[Obj]:
    """Read a watch stream until the server ends it (timeoutSeconds)."""
    resp = requests.get(cluster.url + path, params={"watch": "true", **params}, stream=True, timeout=30)
    return [json.loads(line) for line in resp.iter_lines() if line]


def test_watch_from_a_list_resource_version_loses_no_events(cluster: Cluster) -> None:
    api = cluster.api
    api.create("v1/configmaps", configmap("before"))
    listed = api.request("GET", "/api/v1/namespaces/default/configmaps")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["before"]
    # Changes between the list and the watch must reach the watcher.
    api.create("v1/configmaps", configmap("between"))
    api.patch("v1/configmaps", "before", {"data": {"k": "changed"}}, "default")
    api.delete("v1/configmaps", "between", "default")
    events = watch_events(
        cluster,
        "/api/v1/namespaces/default/configmaps",
        resourceVersion=listed["metadata"]["resourceVersion"],
        timeoutSeconds="1",
        allowWatchBookmarks="true",
    )
    changes = [(e["type"], e["object"]["metadata"]["name"]) for e in events if e["type"] != "BOOKMARK"]
    assert changes == [("ADDED", "between"), ("MODIFIED", "before"), ("DELETED", "between")]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events if e["type"] != "BOOKMARK"]
    assert rvs == sorted(rvs) and rvs[0] > int(listed["metadata"]["resourceVersion"])
    # The stream ended by itself (timeoutSeconds) and carried a bookmark while idle.
    assert any(e["type"] == "BOOKMARK" for e in events)


def test_watch_without_resource_version_starts_with_the_current_state(cluster: Cluster) -> None:
    cluster.api.create("v1/configmaps", configmap("a", {"tier": "x"}))
    cluster.api.create("v1/configmaps", configmap("b", {"tier": "y"}))
    events = watch_events(cluster, "/api/v1/configmaps", labelSelector="tier=x", timeoutSeconds="1")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "a")]


def test_label_and_field_selectors(cluster: Cluster) -> None:
    api = cluster.api
    api.create("v1/configmaps", configmap("a", {"app": "x", "tier": "web"}))
    api.create("v1/configmaps", configmap("b", {"app": "y"}))
    api.create(
        "v1/configmaps",
        {
            **configmap("c", {"app": "x"}),
            "metadata": {"name": "c", "namespace": "kube-system", "labels": {"app": "x"}},
        },
    )

    def names(**kw: Any) -> list[str]:
        return sorted(o["metadata"]["name"] for o in api.list("v1/configmaps", **kw))

    assert names(label_selector="app=x") == ["a", "c"]
    assert names(label_selector="app in (x,y),!tier") == ["b", "c"]
    assert names(label_selector="app!=x") == ["b"]
    assert names(namespace="default", label_selector="app=x") == ["a"]
    assert names(field_selector="metadata.name=b") == ["b"]
    assert names(field_selector="metadata.namespace!=default") == ["c"]


def test_generation_resource_version_and_patch_flavours(cluster: Cluster) -> None:
    api = cluster.api
    created = api.create(
        "apps/v1/deployments",
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "d", "namespace": "default"},
            "spec": {
                "replicas": 1,
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "a", "image": "x", "command": ["sleep"]},
                            {"name": "b", "image": "y"},
                        ]
                    }
                },
            },
        },
    )
    assert created["metadata"]["generation"] == 1
    # Strategic merge merges containers by name (what kubectl apply sends for built-in kinds).
    patched = api.patch(
        "apps/v1/deployments",
        "d",
        {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "z"}]}}}},
        "default",
        type="strategic",
    )
    containers = patched["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("a", "x"), ("b", "z")]
    assert containers[0]["command"] == ["sleep"]
    assert patched["metadata"]["generation"] == 2
    # Metadata-only changes keep the generation; every write moves the resourceVersion forward.
    labelled = api.patch("apps/v1/deployments", "d", {"metadata": {"labels": {"l": "1"}}}, "default")
    assert labelled["metadata"]["generation"] == 2
    assert int(labelled["metadata"]["resourceVersion"]) > int(patched["metadata"]["resourceVersion"])
    # JSON patch with a failing `test` op is a 422 (kopf relies on it for finalizer races).
    with pytest.raises(ApiClientError) as failed:
        api.patch(
            "apps/v1/deployments",
            "d",
            [
                {"op": "test", "path": "/metadata/labels/l", "value": "2"},
                {"op": "replace", "path": "/spec/replicas", "value": 5},
            ],
            "default",
            type="json",
        )
    assert failed.value.code == 422
    ok = api.patch(
        "apps/v1/deployments",
        "d",
        [
            {"op": "test", "path": "/metadata/labels/l", "value": "1"},
            {"op": "replace", "path": "/spec/replicas", "value": 5},
        ],
        "default",
        type="json",
    )
    assert ok["spec"]["replicas"] == 5 and ok["metadata"]["generation"] == 3
    # Stale updates conflict.
    stale = dict(created)
    with pytest.raises(ApiClientError) as conflict:
        api.replace("apps/v1/deployments", stale)
    assert conflict.value.code == 409


def test_owner_references_cascade_and_orphan(cluster: Cluster) -> None:
    api = cluster.api
    root = api.create("v1/configmaps", configmap("root"))
    child = api.create("v1/configmaps", configmap("child", owner=root))
    api.create("v1/configmaps", configmap("grandchild", owner=child))
    other_owner = api.create("v1/configmaps", configmap("other"))
    shared = configmap("shared", owner=root)
    shared["metadata"]["ownerReferences"].append(
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "other", "uid": other_owner["metadata"]["uid"]}
    )
    api.create("v1/configmaps", shared)
    api.delete("v1/configmaps", "root", "default")
    remaining = sorted(o["metadata"]["name"] for o in api.list("v1/configmaps", "default"))
    assert remaining == ["other", "shared"]  # a dependent with a living owner stays

    parent = api.create("v1/configmaps", configmap("parent"))
    api.create("v1/configmaps", configmap("kept", owner=parent))
    api.delete("v1/configmaps", "parent", "default", propagation="Orphan")
    kept = api.get("v1/configmaps", "kept", "default")
    assert kept["metadata"].get("ownerReferences") == []


def test_finalizers_hold_deletion_until_removed(cluster: Cluster) -> None:
    api = cluster.api
    api.create("v1/configmaps", configmap("held", finalizers=["example.dev/cleanup"]))
    api.delete("v1/configmaps", "held", "default")
    held = api.get("v1/configmaps", "held", "default")
    assert held["metadata"]["deletionTimestamp"]
    api.patch("v1/configmaps", "held", {"metadata": {"finalizers": None}}, "default")
    assert api.find("v1/configmaps", "held", "default") is None


def test_request_log_names_verbs_and_user_agents(cluster: Cluster) -> None:
    cluster.api.create("v1/configmaps", configmap("logged"))
    cluster.api.list("v1/configmaps", "default")
    mine = cluster.requests(user_agent="foresight-tests")
    assert [(r.verb, r.resource, r.namespace) for r in mine] == [
        ("create", "configmaps", "default"),
        ("list", "configmaps", "default"),
    ]


def test_status_writes_are_validated_and_pruned_against_the_schema(cluster: Cluster) -> None:
    """As on a real API server: the status subresource is schema-checked too (a bad enum is a 422,
    an unknown field is dropped), and the emulator records what it pruned for tests to assert on."""
    api = cluster.api
    crd = yaml.safe_load((REPO / "crds" / "trainingjobs.foresight.dev.yaml").read_text())
    api.create("apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    tj = "foresight.dev/v1alpha1/trainingjobs"
    spec = {"task": "forecast", "dataset": {"uri": "pvc://claim/panel.npz"}}
    api.create(tj, {"metadata": {"name": "t"}, "spec": spec}, "default")
    with pytest.raises(ApiClientError) as err:
        api.patch(tj, "t", {"status": {"phase": "Bogus"}}, "default", sub="status")
    assert err.value.code == 422 and 'status.phase: Unsupported value: "Bogus"' in err.value.status["message"]
    stored = api.patch(tj, "t", {"status": {"phase": "Running", "typo": 1}}, "default", sub="status")
    assert stored["status"]["phase"] == "Running" and "typo" not in stored["status"]
    assert cluster.server.pruned == ["TrainingJob default/t: status.typo"]
