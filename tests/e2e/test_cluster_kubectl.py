"""The API emulator behaves like an API server where real kubectl needs it (custom resources)."""

from __future__ import annotations

import pytest
import yaml

from tests.cluster.emulator import Cluster
from tests.cluster.kubectl import Kubectl
from tests.cluster.samples import CRD, GADGETS, widget

pytestmark = pytest.mark.e2e


def test_kubectl_round_trip_on_a_custom_resource(cluster: Cluster, kubectl: Kubectl) -> None:
    kubectl.apply(yaml.safe_dump(CRD)).check()
    kubectl.apply(yaml.safe_dump(GADGETS)).check()
    assert "widgets.example.dev" in kubectl("get", "crd").check().stdout

    # Create, defaults applied, unknown field pruned.
    kubectl.apply(widget("w1", junk=True)).check()
    out = kubectl("get", "wd").check().stdout.splitlines()
    assert out[0].split() == ["NAME", "SIZE", "REPLICAS", "READY", "AGE"]
    assert out[1].split()[:3] == ["w1", "small", "1"]
    stored = cluster.api.get("example.dev/v1/widgets", "w1", "default")
    assert stored["spec"] == {"size": "small", "replicas": 1, "maxReplicas": 5}
    assert stored["metadata"]["generation"] == 1 and stored["metadata"]["uid"]

    # The category lists every kind in it.
    gadget = widget("g1").replace("Widget", "Gadget")
    kubectl.apply(gadget).check()
    category = kubectl("get", "examples").check().stdout
    assert "widget.example.dev/w1" in category and "gadget.example.dev/g1" in category

    # Invalid objects are rejected with the field named.
    bad = kubectl.apply(widget("w2", size="huge"))
    assert bad.rc != 0 and 'spec.size: Unsupported value: "huge"' in bad.stderr
    bad = kubectl.apply(widget("w2", replicas=-1, label="UPPER", tags=["a", "b", "c"]))
    assert bad.rc != 0
    for field in ("spec.replicas", "spec.label", "spec.tags"):
        assert field in bad.stderr
    missing = kubectl.apply(
        yaml.safe_dump(
            {"apiVersion": "example.dev/v1", "kind": "Widget", "metadata": {"name": "w3"}, "spec": {}}
        )
    )
    assert missing.rc != 0 and "spec.size: Required value" in missing.stderr
    cel = kubectl.apply(widget("w2", replicas=7))
    assert cel.rc != 0 and "replicas exceed maxReplicas" in cel.stderr
    transition = kubectl.apply(widget("w1", size="large"))
    assert transition.rc != 0 and "size is immutable" in transition.stderr
    assert cluster.api.find("example.dev/v1/widgets", "w2", "default") is None

    # Spec patches bump the generation; status patches and label changes do not.
    kubectl("patch", "wd", "w1", "--type=merge", "-p", '{"spec":{"replicas":3}}').check()
    kubectl(
        "patch",
        "wd",
        "w1",
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status":{"conditions":[{"type":"Ready","status":"True"}]}}',
    ).check()
    kubectl("label", "wd", "w1", "team=sre").check()
    after = cluster.api.get("example.dev/v1/widgets", "w1", "default")
    assert after["metadata"]["generation"] == 2
    assert after["metadata"]["labels"] == {"team": "sre"}
    # The main resource ignores status; the status subresource ignores spec.
    cluster.api.patch("example.dev/v1/widgets", "w1", {"status": {"x": 1}}, "default")
    cluster.api.patch("example.dev/v1/widgets", "w1", {"spec": {"replicas": 9}}, "default", sub="status")
    again = cluster.api.get("example.dev/v1/widgets", "w1", "default")
    assert again["spec"]["replicas"] == 3 and "x" not in again["status"]
    assert int(again["metadata"]["resourceVersion"]) > int(after["metadata"]["resourceVersion"])
    row = kubectl("get", "wd", "w1", "--no-headers").check().stdout.split()
    assert row[:4] == ["w1", "small", "3", "True"]
    assert (
        kubectl("get", "wd", "-l", "team=sre", "-o", "name").check().stdout.strip() == "widget.example.dev/w1"
    )

    # Events posted through the API show in describe (twice: event names never collide).
    for reason in ("Reconciled", "Reconciled"):
        cluster.api.create(
            "v1/events",
            {
                "metadata": {"generateName": "w1-", "namespace": "default"},
                "involvedObject": {
                    "apiVersion": "example.dev/v1",
                    "kind": "Widget",
                    "name": "w1",
                    "namespace": "default",
                    "uid": again["metadata"]["uid"],
                },
                "reason": reason,
                "message": "all good",
                "type": "Normal",
                "source": {"component": "tests"},
            },
        )
    described = kubectl("describe", "wd", "w1").check().stdout
    assert "Events:" in described and "Reconciled" in described and "all good" in described

    assert kubectl("delete", "wd", "w1").check().rc == 0
    assert cluster.api.find("example.dev/v1/widgets", "w1", "default") is None
    assert "No resources found" in kubectl("get", "wd").stderr


def test_kubectl_core_kinds_and_namespaces(cluster: Cluster, kubectl: Kubectl) -> None:
    kubectl.apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: team-a}\n").check()
    assert "team-a" in kubectl("get", "ns").check().stdout
    kubectl.apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, namespace: team-a}\ndata: {a: '1'}\n"
    ).check()
    assert kubectl("-n", "team-a", "get", "cm", "cfg", "-o", "jsonpath={.data.a}").check().stdout == "1"
    listed = kubectl("get", "cm", "-A").check().stdout.splitlines()
    assert listed[0].split() == ["NAMESPACE", "NAME", "DATA", "AGE"] and listed[1].split()[:3] == [
        "team-a",
        "cfg",
        "1",
    ]
    # Typed generators send protobuf, which the emulator refuses with a pointer to the YAML way.
    generator = kubectl("-n", "team-a", "create", "configmap", "other", "--from-literal=a=1")
    assert generator.rc != 0 and "kubectl apply -f" in generator.stderr
    # Deleting a namespace deletes what is in it.
    kubectl("delete", "namespace", "team-a").check()
    assert cluster.api.find("v1/configmaps", "cfg", "team-a") is None
