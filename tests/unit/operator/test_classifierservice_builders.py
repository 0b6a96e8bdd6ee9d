"""ClassifierService builder: spec -> ConfigMap (a loadable config), Deployment, Service, PVC, HPA."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from foresight.api.classifierservice import ClassifierServiceSpec
from foresight.contract.classifier import ClassifierConfig
from foresight.serving.classifier.config import load_config
from foresight_operator.builders.classifierservice import (
    CONFIG_HASH_ANNOTATION,
    ClassifierChildren,
    OnnxModel,
    build_classifier_children,
    classifier_names,
)
from foresight_operator.reconcile import owner_labels
from foresight_operator.reconcile.updates import SPEC_HASH_ANNOTATION

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = yaml.safe_load((REPO / "examples" / "classifierservice.yaml").read_text())
LABELS = owner_labels("ClassifierService", "photo-classifier")


def build(spec: dict[str, Any], name: str = "photo-classifier", **kw: Any) -> ClassifierChildren:
    return build_classifier_children(
        ClassifierServiceSpec.model_validate(spec),
        name=name,
        namespace="photos",
        labels=owner_labels("ClassifierService", name),
        default_image="runtime:1",
        **kw,
    )


def config_of(children: ClassifierChildren, tmp_path: Path) -> ClassifierConfig:
    (text,) = children.config_map["data"].values()
    path = tmp_path / "classifier.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)  # the loader the pod runs


def container(children: ClassifierChildren) -> dict[str, Any]:
    return dict(children.deployment["spec"]["template"]["spec"]["containers"][0])


def redis_spec(**extra: Any) -> dict[str, Any]:
    spec = copy.deepcopy(EXAMPLE["spec"])
    spec["replicas"] = 3
    spec["cache"] = {
        "store": "redis",
        "redis": {"url": "redis://redis.photos:6379/0", "passwordSecret": {"name": "redis", "key": "pw"}},
    }
    spec.update(extra)
    return spec


def test_example_becomes_configmap_deployment_service_and_pvc(tmp_path: Path) -> None:
    c = build(EXAMPLE["spec"])
    cfg = config_of(c, tmp_path)
    # The config the pod loads says what the spec says.
    assert [k.key for k in cfg.categories][:2] == ["social_activities", "pets"] and len(cfg.categories) == 8
    assert cfg.backend.type == "dashscope" and cfg.backend.dashscope.model == "qwen-vl-plus"
    assert cfg.backend.dashscope.api_key_env == "DASHSCOPE_API_KEY"
    assert (cfg.backend.dashscope.max_retries, cfg.backend.dashscope.timeout_seconds) == (3, 15.0)
    assert cfg.cache.store == "sqlite" and cfg.cache.sqlite_path == "classifier.db"
    assert cfg.cache.retention_days == 90 and cfg.limits.max_upload_bytes == 10485760
    assert (cfg.host, cfg.port, cfg.auth.token_env) == ("0.0.0.0", 8000, None)
    assert "pets (Pets / 宠物)" in cfg.render_prompt()

    main = container(c)
    assert main["command"] == [
        "foresight", "serve", "classifier", "--config", "/etc/foresight/classifier/classifier.yaml",
    ]  # fmt: skip
    # The API key only as a secretKeyRef, never a value.
    assert {
        "name": "DASHSCOPE_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "dashscope", "key": "api-key"}},
    } in (main["env"])
    assert main["readinessProbe"]["httpGet"] == {"path": "/api/v1/health", "port": "http"}
    assert main["livenessProbe"]["httpGet"] == {"path": "/api/v1/health", "port": "http"}
    assert main["resources"]["requests"] == {"cpu": "1", "memory": "1Gi"}
    assert main["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    # sqlite on the claim, which is also the working directory (the config path is relative to it).
    mounts = {m["mountPath"]: m["name"] for m in main["volumeMounts"]}
    assert mounts == {"/etc/foresight/classifier": "config", "/var/lib/foresight/cache": "cache"}
    assert main["workingDir"] == "/var/lib/foresight/cache"
    volumes = {v["name"]: v for v in c.deployment["spec"]["template"]["spec"]["volumes"]}
    assert (
        volumes["config"]["configMap"]["name"]
        == c.config_map["metadata"]["name"]
        == "photo-classifier-config"
    )
    assert volumes["cache"]["persistentVolumeClaim"]["claimName"] == "photo-classifier-cache"
    spec = c.deployment["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}  # RWO claim
    assert spec["selector"]["matchLabels"] == LABELS == spec["template"]["metadata"]["labels"]

    assert c.pvc is not None and c.pvc["metadata"]["name"] == "photo-classifier-cache"
    assert c.pvc["spec"] == {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}}
    assert c.hpa is None
    assert c.service["metadata"]["name"] == "photo-classifier"
    assert c.service["spec"]["selector"] == LABELS
    assert c.service["spec"]["ports"] == [
        {"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}
    ]
    assert c.endpoint == "http://photo-classifier.photos.svc:8000"
    assert [(s.name, s.key) for s in c.secrets] == [("dashscope", "api-key")]
    for child in (c.config_map, c.deployment, c.service, c.pvc):
        assert child["metadata"]["namespace"] == "photos" and child["metadata"]["labels"] == LABELS


def test_redis_with_autoscaling_gets_an_hpa_no_pvc_and_the_password_from_its_secret(tmp_path: Path) -> None:
    c = build(redis_spec(autoscaling={"minReplicas": 2, "maxReplicas": 6, "targetCpuUtilization": 60}))
    cfg = config_of(c, tmp_path)
    assert cfg.cache.store == "redis" and cfg.cache.redis_url == "redis://redis.photos:6379/0"
    assert cfg.cache.redis_password_env == "FORESIGHT_REDIS_PASSWORD"
    assert (
        cfg.cache.redis_prefix == "foresight:classifier:photos:photo-classifier"
    )  # services may share a Redis
    main = container(c)
    assert {
        "name": "FORESIGHT_REDIS_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "redis", "key": "pw"}},
    } in (main["env"])
    assert "workingDir" not in main and [m["name"] for m in main["volumeMounts"]] == ["config"]
    assert c.pvc is None
    assert c.deployment["spec"]["replicas"] == 2  # the HPA's floor; the HPA owns the count from here
    assert c.deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert c.hpa is not None and c.hpa["apiVersion"] == "autoscaling/v2"
    assert c.hpa["spec"] == {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "photo-classifier"},
        "minReplicas": 2,
        "maxReplicas": 6,
        "metrics": [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}},
            }
        ],
    }
    assert {(s.name, s.key) for s in c.secrets} == {("dashscope", "api-key"), ("redis", "pw")}


def test_spec_hash_follows_the_pod_spec_but_not_the_hpa_owned_replica_count() -> None:
    base = build(redis_spec(autoscaling={"minReplicas": 2, "maxReplicas": 6}))
    floor = build(redis_spec(autoscaling={"minReplicas": 3, "maxReplicas": 6}))
    h = SPEC_HASH_ANNOTATION
    assert base.deployment["metadata"]["annotations"][h] == floor.deployment["metadata"]["annotations"][h]
    plain2, plain3 = build(redis_spec(replicas=2)), build(redis_spec(replicas=3))
    assert plain2.deployment["metadata"]["annotations"][h] != plain3.deployment["metadata"]["annotations"][h]


def test_a_changed_prompt_changes_the_config_and_rolls_the_pods(tmp_path: Path) -> None:
    spec = copy.deepcopy(EXAMPLE["spec"])
    spec["prompt"] = "Which of {categories}? One word."
    spec["categories"] = [
        {"key": "cat", "zh": "猫", "en": "Cat"},
        {"key": "other", "zh": "其他", "en": "Other"},
    ]
    a, b = build(EXAMPLE["spec"]), build(spec)
    cfg = config_of(b, tmp_path)
    assert [c.key for c in cfg.categories] == ["cat", "other"]
    assert cfg.render_prompt() == "Which of cat (Cat / 猫), other (Other / 其他)? One word."
    ann = CONFIG_HASH_ANNOTATION
    assert (
        a.deployment["spec"]["template"]["metadata"]["annotations"][ann]
        != b.deployment["spec"]["template"]["metadata"]["annotations"][ann]
    )
    assert (
        a.deployment["metadata"]["annotations"][SPEC_HASH_ANNOTATION]
        != (b.deployment["metadata"]["annotations"][SPEC_HASH_ANNOTATION])
    )


def test_no_secret_value_or_base_url_surprise_in_any_child(tmp_path: Path) -> None:
    spec = copy.deepcopy(EXAMPLE["spec"])
    spec["backend"]["dashscope"]["baseUrl"] = "http://dashscope.local:8080/api/v1"
    spec["authTokenSecret"] = {"name": "clients", "key": "token"}
    c = build(spec)
    cfg = config_of(c, tmp_path)
    assert cfg.backend.dashscope.base_url == "http://dashscope.local:8080/api/v1"
    assert cfg.auth.token_env == "FORESIGHT_CLASSIFIER_TOKEN"
    env = {e["name"]: e for e in container(c)["env"]}
    assert env["FORESIGHT_CLASSIFIER_TOKEN"]["valueFrom"] == {
        "secretKeyRef": {"name": "clients", "key": "token"}
    }
    assert all("value" not in e for name, e in env.items() if name != "PYTHONUNBUFFERED")
    dumped = json.dumps([c.config_map, c.deployment, c.service, c.pvc])
    assert "sk-" not in dumped and "apiKeySecret" not in dumped


def test_bind_host_image_override_and_placement() -> None:
    spec = copy.deepcopy(EXAMPLE["spec"])
    spec["runtime"] = {"image": "registry.local/foresight:2", "pullPolicy": "Always"}
    spec["placement"] = {"nodeSelector": {"pool": "cpu"}}
    spec["port"] = 18080
    c = build(spec, bind_host="127.0.0.1")
    cfg = ClassifierConfig.model_validate(yaml.safe_load(c.config_map["data"]["classifier.yaml"]))
    assert (cfg.host, cfg.port) == ("127.0.0.1", 18080)
    main = container(c)
    assert (main["image"], main["imagePullPolicy"]) == ("registry.local/foresight:2", "Always")
    assert c.deployment["spec"]["template"]["spec"]["nodeSelector"] == {"pool": "cpu"}
    assert c.endpoint == "http://photo-classifier.photos.svc:18080"


def test_onnx_backend_mounts_the_model_claim_read_only(tmp_path: Path) -> None:
    spec = copy.deepcopy(EXAMPLE["spec"])
    spec["backend"] = {"type": "onnx", "onnx": {"modelVersion": "photo-net-v3"}}
    with pytest.raises(ValueError, match="OnnxModel"):
        build(spec)
    c = build(spec, onnx_model=OnnxModel(claim="models", path="photo-net/3/model.onnx"))
    cfg = config_of(c, tmp_path)
    assert cfg.backend.type == "onnx" and cfg.backend.onnx is not None
    assert cfg.backend.onnx.model_path == "/var/lib/foresight/models/photo-net/3/model.onnx"
    assert cfg.backend.price_per_call == 0.0
    mounts = {m["name"]: m for m in container(c)["volumeMounts"]}
    assert mounts["model"] == {"name": "model", "mountPath": "/var/lib/foresight/models", "readOnly": True}
    assert c.secrets == ()  # no API key needed
    assert all(e["name"] != "DASHSCOPE_API_KEY" for e in container(c)["env"])


def test_child_names_are_valid_service_names() -> None:
    assert classifier_names("photo-classifier").deployment == "photo-classifier"
    for odd in ("photos.v2", "1st-classifier", "x" * 120):
        n = classifier_names(odd)
        assert n.service[0].isalpha() and len(n.service) <= 63 and "." not in n.service, n
        assert len(n.config_map) <= 63 and len(n.claim) <= 63


# --- under an ABExperiment: every variant loaded, the routing mounted ------------------------------


def test_an_experiments_variants_are_mounted_and_listed_and_the_routing_is_optional() -> None:
    from foresight_operator.builders.classifierservice import (
        VARIANTS_ANNOTATION,
        ExperimentServing,
        VariantModel,
    )

    spec = copy.deepcopy(EXAMPLE["spec"])
    spec["backend"] = {"type": "onnx", "onnx": {"modelVersion": "net-v1"}}
    experiment = ExperimentServing(
        experiment="photos/v2-vs-v1",
        variants=(
            VariantModel("control", "net-v1", OnnxModel(claim="models", path="net/1/model.onnx")),
            VariantModel("candidate", "net-v2", OnnxModel(claim="exports", path="net/2/model.onnx")),
        ),
    )
    plain = build(spec, onnx_model=OnnxModel(claim="models", path="net/1/model.onnx"))
    children = build(
        spec, onnx_model=OnnxModel(claim="models", path="net/1/model.onnx"), experiment=experiment
    )
    pod = children.deployment["spec"]["template"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    # The backend's claim is mounted once; the other claim once more, read-only; the routing optional.
    assert volumes["model"]["persistentVolumeClaim"]["claimName"] == "models"
    assert volumes["variant-models-0"]["persistentVolumeClaim"]["claimName"] == "exports"
    assert volumes["routing"]["configMap"] == {"name": "photo-classifier-routing", "optional": True}
    mounts = {m["name"]: m for m in container(children)["volumeMounts"]}
    assert (
        mounts["routing"]["mountPath"] == "/etc/foresight/routing" and mounts["routing"]["readOnly"] is True
    )
    assert mounts["variant-models-0"] == {
        "name": "variant-models-0",
        "mountPath": "/var/lib/foresight/variants/exports",
        "readOnly": True,
    }
    assert pod["metadata"]["annotations"][VARIANTS_ANNOTATION] == "photos/v2-vs-v1:control,candidate"
    (text,) = children.config_map["data"].values()
    config = yaml.safe_load(text)
    assert [(v["name"], v["backend"]["onnx"]["modelPath"]) for v in config["variants"]] == [
        ("control", "/var/lib/foresight/models/net/1/model.onnx"),
        ("candidate", "/var/lib/foresight/variants/exports/net/2/model.onnx"),
    ]
    assert config["routing"]["file"] == "/etc/foresight/routing/routing.json"
    # A new set of variants rolls the pods (the config's hash is in the template); without one, the
    # service's children are what they were before experiments existed.
    annotations = pod["metadata"]["annotations"]
    assert (
        annotations[CONFIG_HASH_ANNOTATION]
        != plain.deployment["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
    )
    assert VARIANTS_ANNOTATION not in plain.deployment["spec"]["template"]["metadata"]["annotations"]
    assert not yaml.safe_load(next(iter(plain.config_map["data"].values()))).get("variants")
