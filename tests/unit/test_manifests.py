"""The kustomize base in manifests/: rendered by the real ``kubectl kustomize`` and checked.

What must hold for ``kubectl apply -k manifests/`` to give a safe install: the six CRDs, a
hardened single-replica operator Deployment, and RBAC that grants the operator exactly the API
calls listed in manifests/operator-api-calls.yaml (no wildcards, secrets ``get`` only). The RBAC
checks read the source YAML too, so they run even where kubectl cannot be fetched.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.servers import unavailable

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `tests.cluster` is imported as a package from the repository root
    sys.path.insert(0, str(REPO))

from tests.cluster.kubectl import KubectlUnavailable, ensure_kubectl  # noqa: E402

MANIFESTS = REPO / "manifests"
PLURALS = [
    "forecasttasks",
    "trainingjobs",
    "modelversions",
    "modellibraries",
    "abexperiments",
    "classifierservices",
]
NAMESPACE = "foresight-system"
OPERATOR_IMAGE = "ghcr.io/foresight-dev/foresight-operator"

Triple = tuple[str, str, str]


@pytest.fixture(scope="module")
def kubectl() -> Path:
    try:
        return ensure_kubectl()
    except KubectlUnavailable as exc:
        unavailable("kubectl (to render the kustomization)", str(exc))


def kustomize(kubectl: Path, directory: Path) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [str(kubectl), "kustomize", str(directory)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, f"kubectl kustomize {directory} failed:\n{proc.stderr}"
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


@pytest.fixture(scope="module")
def rendered(kubectl: Path) -> list[dict[str, Any]]:
    return kustomize(kubectl, MANIFESTS)


def one(objs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def source_docs(filename: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((MANIFESTS / filename).read_text(encoding="utf-8")) if d]


def grants(rules: list[dict[str, Any]]) -> set[Triple]:
    """(apiGroup, resource, verb) for every combination a list of PolicyRules allows."""
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule.get("verbs", [])
    }


def api_calls() -> set[Triple]:
    data = yaml.safe_load((MANIFESTS / "operator-api-calls.yaml").read_text(encoding="utf-8"))
    triples: set[Triple] = set()
    for call in data["calls"]:
        assert call.get("why"), f"every API call needs a reason: {call}"
        triples |= {(call["apiGroup"], r, v) for r in call["resources"] for v in call["verbs"]}
    return triples


@pytest.fixture(params=["source", "rendered"])
def cluster_roles(request: pytest.FixtureRequest) -> dict[str, dict[str, Any]]:
    """The ClusterRoles by name, from rbac.yaml and from the kustomize output."""
    from_source = request.param == "source"
    docs = source_docs("rbac.yaml") if from_source else request.getfixturevalue("rendered")
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == "ClusterRole"}


# -- the rendered base --------------------------------------------------------------------------


def test_renders_the_whole_install(rendered: list[dict[str, Any]]) -> None:
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in rendered)
    assert kinds == sorted(
        [
            ("Namespace", NAMESPACE),
            *[("CustomResourceDefinition", f"{p}.foresight.dev") for p in PLURALS],
            ("ServiceAccount", "foresight-operator"),
            ("ClusterRole", "foresight-operator"),
            ("ClusterRole", "foresight-edit"),
            ("ClusterRole", "foresight-view"),
            ("ClusterRoleBinding", "foresight-operator"),
            ("Service", "foresight-operator-metrics"),
            ("Deployment", "foresight-operator"),
        ]
    )
    for obj in rendered:
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "foresight", obj["kind"]
        if obj["kind"] in {"ServiceAccount", "Service", "Deployment"}:
            assert obj["metadata"]["namespace"] == NAMESPACE


def test_crds_come_unchanged_from_the_generated_files(rendered: list[dict[str, Any]]) -> None:
    for plural in PLURALS:
        crd = one(rendered, "CustomResourceDefinition", f"{plural}.foresight.dev")
        generated = yaml.safe_load(
            (REPO / "crds" / f"{plural}.foresight.dev.yaml").read_text(encoding="utf-8")
        )
        assert crd["spec"] == generated["spec"]
        assert "namespace" not in crd["metadata"]


def test_operator_deployment_is_single_recreate_and_hardened(rendered: list[dict[str, Any]]) -> None:
    dep = one(rendered, "Deployment", "foresight-operator")
    spec = dep["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    # The immutable selector is left alone by the common labels, and still selects the pods.
    selector = spec["selector"]["matchLabels"]
    assert "app.kubernetes.io/part-of" not in selector
    assert selector.items() <= spec["template"]["metadata"]["labels"].items()
    assert pod["serviceAccountName"] == "foresight-operator"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}

    (container,) = pod["containers"]
    assert container["image"] == f"{OPERATOR_IMAGE}:0.1.0"
    assert container["command"] == ["foresight", "operator", "--all-namespaces"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["runAsNonRoot"] is True
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}

    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    live, ready = container["livenessProbe"]["httpGet"], container["readinessProbe"]["httpGet"]
    assert (live["path"], ports[live["port"]]) == ("/healthz", 8081)
    assert (ready["path"], ports[ready["port"]]) == ("/readyz", 8080)

    # A read-only root needs a writable /tmp.
    volumes = {v["name"]: v for v in pod["volumes"]}
    tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
    assert len(tmp) == 1 and "emptyDir" in volumes[tmp[0]["name"]]
    env = {e["name"]: e for e in container["env"]}
    assert env["FORESIGHT_NAMESPACE_SCOPE"]["value"] == "all"
    assert env["FORESIGHT_OPERATOR_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert not any(
        "secret" in e["name"].lower() or "secretKeyRef" in e.get("valueFrom", {}) for e in env.values()
    )


def test_metrics_service_selects_the_operator_and_is_scrapable(rendered: list[dict[str, Any]]) -> None:
    svc = one(rendered, "Service", "foresight-operator-metrics")
    dep = one(rendered, "Deployment", "foresight-operator")
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    (port,) = svc["spec"]["ports"]
    assert port["port"] == 8080 and port["targetPort"] == "metrics"
    annotations = svc["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "8080"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert not [o for o in rendered if o["kind"] == "ServiceMonitor"]


def test_binding_gives_the_operator_role_to_its_service_account(rendered: list[dict[str, Any]]) -> None:
    binding = one(rendered, "ClusterRoleBinding", "foresight-operator")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "foresight-operator",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "foresight-operator", "namespace": NAMESPACE}
    ]


def test_runtime_pods_get_no_rbac(rendered: list[dict[str, Any]]) -> None:
    names = {o["metadata"]["name"] for o in rendered}
    assert not {n for n in names if "runtime" in n}
    assert not [o for o in rendered if o["kind"] in {"Role", "RoleBinding"}]
    bindings = [o for o in rendered if o["kind"] == "ClusterRoleBinding"]
    assert [s["name"] for b in bindings for s in b["subjects"]] == ["foresight-operator"]


def test_image_entry_retags_the_operator(kubectl: Path, tmp_path: Path) -> None:
    """What `kustomize edit set image` writes (the images entry) reaches the Deployment."""
    shutil.copytree(MANIFESTS, tmp_path / "manifests")
    shutil.copytree(REPO / "crds", tmp_path / "crds")
    kfile = tmp_path / "manifests" / "kustomization.yaml"
    kustomization = yaml.safe_load(kfile.read_text(encoding="utf-8"))
    (entry,) = kustomization["images"]
    assert entry["name"] == OPERATOR_IMAGE
    entry.update(newName="registry.example/foresight-operator", newTag="9.9.9")
    kfile.write_text(yaml.safe_dump(kustomization), encoding="utf-8")
    dep = one(kustomize(kubectl, tmp_path / "manifests"), "Deployment", "foresight-operator")
    assert (
        dep["spec"]["template"]["spec"]["containers"][0]["image"]
        == "registry.example/foresight-operator:9.9.9"
    )


def test_make_manifests_puts_the_built_images_in_both_places(kubectl: Path) -> None:
    """`make image deploy IMAGE_REGISTRY=... IMAGE_TAG=...` deploys the images it built: the
    operator's container and the runtime image the operator starts for its Jobs."""
    out = subprocess.run(
        ["make", "-s", "manifests", "IMAGE_REGISTRY=registry.example/fs", "IMAGE_TAG=9.9.9",
         f"KUBECTL={kubectl}"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    dep = one(list(yaml.safe_load_all(out)), "Deployment", "foresight-operator")
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example/fs/foresight-operator:9.9.9"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["FORESIGHT_RUNTIME_IMAGE"] == "registry.example/fs/foresight-runtime:9.9.9"
    assert "ghcr.io/foresight-dev" not in out


# -- RBAC ---------------------------------------------------------------------------------------


def test_no_wildcards_in_any_role(cluster_roles: dict[str, dict[str, Any]]) -> None:
    for name, role in cluster_roles.items():
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert not [v for v in rule.get(field, []) if "*" in v], (
                    f"{name}: wildcard in {field}: {rule}"
                )
            assert "resourceNames" not in rule and "nonResourceURLs" not in rule, f"{name}: {rule}"


def test_operator_role_grants_exactly_the_listed_api_calls(cluster_roles: dict[str, dict[str, Any]]) -> None:
    granted = grants(cluster_roles["foresight-operator"]["rules"])
    needed = api_calls()
    assert needed - granted == set(), "API calls the operator makes but may not"
    assert granted - needed == set(), "grants beyond the operator's API calls"


def test_operator_may_only_get_secrets(cluster_roles: dict[str, dict[str, Any]]) -> None:
    granted = grants(cluster_roles["foresight-operator"]["rules"])
    assert {(g, r, v) for g, r, v in granted if r == "secrets"} == {("", "secrets", "get")}


def test_api_call_list_covers_every_kind_and_its_status() -> None:
    calls = api_calls()
    for plural in PLURALS:
        verbs = {v for g, r, v in calls if (g, r) == ("foresight.dev", plural)}
        assert verbs >= {"get", "list", "watch", "patch"}
        assert {v for g, r, v in calls if (g, r) == ("foresight.dev", f"{plural}/status")} == {"patch"}
    # Every write is a patch (kopf's and the operator's): nothing may PUT a whole object.
    assert not [c for c in calls if c[2] == "update"], "no update verb: the operator only patches"
    creatable = {r for g, r, v in calls if g == "foresight.dev" and v == "create"}
    assert creatable == {"modelversions"}
    assert not [c for c in calls if c[0] == "kopf.dev"], "standalone operator: no kopf peering"


def test_user_roles_aggregate_into_the_builtin_roles(cluster_roles: dict[str, dict[str, Any]]) -> None:
    edit, view = cluster_roles["foresight-edit"], cluster_roles["foresight-view"]
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    crud = {"get", "list", "watch", "create", "update", "patch", "delete"}
    assert {("foresight.dev", p, v) for p in PLURALS for v in crud} <= grants(edit["rules"])
    assert grants(view["rules"]) == {
        ("foresight.dev", p, v) for p in PLURALS for v in ("get", "list", "watch")
    }
    # Users never write status: the operator owns it.
    for role in (edit, view):
        assert not [t for t in grants(role["rules"]) if "/" in t[1] or t[0] != "foresight.dev"]


def test_crds_kustomization_lists_every_generated_crd() -> None:
    listed = yaml.safe_load((REPO / "crds" / "kustomization.yaml").read_text(encoding="utf-8"))["resources"]
    assert sorted(listed) == sorted(p.name for p in (REPO / "crds").glob("*.foresight.dev.yaml"))


# -- images -------------------------------------------------------------------------------------


def dockerfile(name: str) -> str:
    """The Dockerfile's instructions, comments left out (they may mention anything)."""
    lines = (REPO / "images" / name).read_text(encoding="utf-8").splitlines()
    return "\n" + "\n".join(line for line in lines if not line.lstrip().startswith("#")) + "\n"


@pytest.mark.parametrize("name", ["runtime.Dockerfile", "operator.Dockerfile"])
def test_images_run_as_non_root_foresight(name: str) -> None:
    text = dockerfile(name)
    assert "\nUSER 10001" in text
    assert 'ENTRYPOINT ["foresight"]' in text


def test_runtime_image_installs_pinned_torch_from_the_chosen_index_before_the_project() -> None:
    text = dockerfile("runtime.Dockerfile")
    assert "\nARG TORCH_VARIANT=cpu\n" in text
    assert "\nARG BASE_IMAGE=python:3.11-slim\nFROM ${BASE_IMAGE}\n" in text
    assert "https://download.pytorch.org/whl/${TORCH_VARIANT}" in text
    assert text.index("torch==2.13.0") < text.index(".[runtime]")


def test_operator_image_installs_only_the_base_package() -> None:
    text = dockerfile("operator.Dockerfile")
    assert "torch" not in text and "[runtime]" not in text
    assert 'CMD ["operator"' in text
