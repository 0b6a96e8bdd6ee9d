"""``build_classifier_children``: a ClassifierService spec -> ConfigMap, Deployment, Service, PVC, HPA.

Pure: the API model and a few resolved facts (names, the runtime image, where an ONNX model
lives) in, manifest dicts out; no client calls, no kopf. The classifier config file comes from
:func:`foresight.contract.classifier.classifier_config_from_spec`, the same mapping local mode uses.

Choices worth knowing:

- The API key (and the Redis password and client token) reach the pods only as environment
  variables with ``secretKeyRef``; the config file names the variables, never the values.
- The sqlite cache lives on a PVC mounted as the container's working directory and the config
  names the file relative to it (``classifier.db``), so the file is wherever the claim is mounted
  (the test kubelet rewrites mount paths in command, args, env and workingDir, not inside files).
- The pod template carries the config's SHA-256, so a changed ConfigMap rolls the pods (they read
  the file once, at start). With sqlite the strategy is Recreate: a ReadWriteOnce claim cannot be
  mounted by the old and the new pod at once.
- The Deployment carries the SHA-256 of the spec the operator wants (:func:`~.deployment.stamp_spec_hash`);
  the handler patches it only when that differs, so repeated reconciles make no writes and do not
  fight server-side defaults. With autoscaling the replica count belongs to the HPA and is left out.
- Under an ABExperiment (:class:`ExperimentServing`) the pods load every variant's ONNX file (their
  claims mounted read-only under :data:`VARIANT_MODEL_DIR`), the config lists the variants, and the
  routing ConfigMap (written by the experiment's controller) is mounted at
  :data:`~foresight.contract.experiment.ROUTING_DIR`, optional, so a pod starts before the first
  split is written. The variants are in the config, so a new set of variants rolls the pods; the
  weights are only in the routing file, which the pods re-read, so a new split does not.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from foresight.api.classifierservice import ClassifierServiceSpec
from foresight.api.meta import SecretKeyRef
from foresight.contract.classifier import (
    API_KEY_ENV,
    AUTH_TOKEN_ENV,
    HEALTH_PATH,
    REDIS_PASSWORD_ENV,
    VariantSource,
    classifier_config_from_spec,
)
from foresight.contract.experiment import ROUTING_DIR, routing_configmap_name

from ..reconcile import child_name
from .configmap import build_configmap
from .deployment import build_deployment, build_service, liveness_probe, stamp_spec_hash
from .pod import Volume

__all__ = [
    "BIND_HOST_ANNOTATION",
    "CACHE_DIR",
    "CONFIG_DIR",
    "CONFIG_FILE",
    "CONFIG_HASH_ANNOTATION",
    "MODEL_DIR",
    "VARIANTS_ANNOTATION",
    "VARIANT_MODEL_DIR",
    "ClassifierChildren",
    "ExperimentServing",
    "OnnxModel",
    "VariantModel",
    "build_classifier_children",
    "classifier_names",
    "variants_annotation",
]

Obj = dict[str, Any]
CONFIG_FILE = "classifier.yaml"
CONFIG_DIR = "/etc/foresight/classifier"
CACHE_DIR = "/var/lib/foresight/cache"
MODEL_DIR = "/var/lib/foresight/models"
SQLITE_FILE = "classifier.db"
BIND_HOST_ANNOTATION = "foresight.dev/bind-host"
"""On the ClassifierService: the address the server binds (default ``0.0.0.0``). For single-host
setups such as the test kubelet, whose pods are processes sharing the host's network."""
CONFIG_HASH_ANNOTATION = "foresight.dev/config-sha256"
VARIANT_MODEL_DIR = "/var/lib/foresight/variants"
"""Where the claims holding an experiment's variant models are mounted (one directory per claim)."""
VARIANTS_ANNOTATION = "foresight.dev/variants"
"""On the pod template: ``<namespace>/<experiment>:<variant>,<variant>...`` the pods load (the
experiment's controller waits for a rollout with every variant before it starts the clock)."""
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class OnnxModel:
    """Where a ModelVersion's ONNX file is: ``pvc://<claim>/<path>``."""

    claim: str
    path: str


@dataclass(frozen=True)
class VariantModel:
    """One variant of an experiment over the service: its name, ModelVersion and ONNX file."""

    name: str
    model_version: str
    model: OnnxModel


@dataclass(frozen=True)
class ExperimentServing:
    """The ABExperiment whose variants the pods load (``experiment`` is ``<namespace>/<name>``)."""

    experiment: str
    variants: tuple[VariantModel, ...]
    """In the experiment's order: the control first."""

    def annotation(self) -> str:
        return variants_annotation(self.experiment, [v.name for v in self.variants])


def variants_annotation(experiment: str, variants: Sequence[str]) -> str:
    """The pod template's :data:`VARIANTS_ANNOTATION`: ``<namespace>/<experiment>:<v1>,<v2>``."""
    return f"{experiment}:" + ",".join(variants)


@dataclass(frozen=True)
class ClassifierNames:
    deployment: str
    service: str
    config_map: str
    claim: str
    hpa: str


def classifier_names(name: str) -> ClassifierNames:
    """Children's names. The Deployment and Service take the resource's own name when it is a valid
    Service name (so the endpoint is ``http://<name>.<namespace>.svc:<port>``)."""
    own = name if _DNS_1035.match(name) else child_name(name, "classifier")
    if not _DNS_1035.match(own):  # a name starting with a digit
        own = child_name(f"cs-{name}", "classifier")
    return ClassifierNames(
        deployment=own,
        service=own,
        config_map=child_name(name, "config"),
        claim=child_name(name, "cache"),
        hpa=own,
    )


@dataclass(frozen=True)
class ClassifierChildren:
    """Everything one ClassifierService owns; ``pvc`` / ``hpa`` are ``None`` when not wanted."""

    names: ClassifierNames
    config_map: Obj
    deployment: Obj
    service: Obj
    pvc: Obj | None
    hpa: Obj | None
    secrets: tuple[SecretKeyRef, ...]
    """The Secret keys the pods need (checked by the handler before the Deployment is touched)."""
    endpoint: str
    port: int


def _volumes(
    spec: ClassifierServiceSpec, names: ClassifierNames, onnx_model: OnnxModel | None
) -> tuple[list[Volume], str | None]:
    """The pods' volumes (config, the sqlite cache claim, the ONNX model's claim) and the model's path."""
    volumes: list[Volume] = [Volume(name="config", mount_path=CONFIG_DIR, config_map=names.config_map)]
    if spec.cache.store == "sqlite":
        volumes.append(Volume(name="cache", mount_path=CACHE_DIR, claim=names.claim))
    if spec.backend.type != "onnx":
        return volumes, None
    if onnx_model is None:
        raise ValueError("backend.type onnx needs the resolved ONNX model (OnnxModel)")
    volumes.append(Volume(name="model", mount_path=MODEL_DIR, claim=onnx_model.claim, read_only=True))
    return volumes, f"{MODEL_DIR}/{onnx_model.path.lstrip('/')}"


def _experiment_volumes(
    service: str, experiment: ExperimentServing, backend_model: OnnxModel | None
) -> tuple[list[Volume], dict[str, str]]:
    """The variants' claims (the backend's reused) and the routing ConfigMap; each variant's model path."""
    volumes: list[Volume] = []
    mounted: dict[str, str] = {}  # claim -> mount path
    if backend_model is not None:
        mounted[backend_model.claim] = MODEL_DIR
    paths: dict[str, str] = {}
    for variant in experiment.variants:
        claim = variant.model.claim
        if claim not in mounted:
            mounted[claim] = f"{VARIANT_MODEL_DIR}/{claim}"
            volumes.append(
                Volume(
                    name=f"variant-models-{len(volumes)}",
                    mount_path=mounted[claim],
                    claim=claim,
                    read_only=True,
                )
            )
        paths[variant.name] = f"{mounted[claim]}/{variant.model.path.lstrip('/')}"
    volumes.append(
        Volume(
            name="routing",
            mount_path=ROUTING_DIR,
            config_map=routing_configmap_name(service),
            read_only=True,
            optional=True,
        )
    )
    return volumes, paths


def _secret_env(spec: ClassifierServiceSpec) -> dict[str, SecretKeyRef]:
    """The variables the pods fill from Secrets; the config file names them, never the values."""
    secret_env: dict[str, SecretKeyRef] = {}
    if spec.backend.type == "dashscope" and spec.backend.dashscope is not None:
        secret_env[API_KEY_ENV] = spec.backend.dashscope.api_key_secret
    if spec.cache.store == "redis" and spec.cache.redis is not None and spec.cache.redis.password_secret:
        secret_env[REDIS_PASSWORD_ENV] = spec.cache.redis.password_secret
    if spec.auth_token_secret is not None:
        secret_env[AUTH_TOKEN_ENV] = spec.auth_token_secret
    return secret_env


def _deployment(
    spec: ClassifierServiceSpec,
    *,
    names: ClassifierNames,
    namespace: str,
    labels: Mapping[str, str],
    default_image: str,
    volumes: list[Volume],
    secret_env: dict[str, SecretKeyRef],
    config_text: str,
    variants: str | None = None,
) -> Obj:
    replicas = spec.autoscaling.min_replicas if spec.autoscaling is not None else spec.replicas
    deployment = build_deployment(
        name=names.deployment,
        namespace=namespace,
        labels=labels,
        selector=labels,
        image=spec.runtime.image or default_image,
        pull_policy=spec.runtime.pull_policy,
        command=["foresight", "serve", "classifier", "--config", f"{CONFIG_DIR}/{CONFIG_FILE}"],
        port=spec.port,
        replicas=replicas,
        secret_env=secret_env,
        resources=spec.resources,
        placement=spec.placement,
        volumes=volumes,
        readiness_path=HEALTH_PATH,
        container_name="classifier",
    )
    dspec = deployment["spec"]
    template = dspec["template"]
    container = template["spec"]["containers"][0]
    container["livenessProbe"] = liveness_probe(HEALTH_PATH)
    if spec.cache.store == "sqlite":
        container["workingDir"] = CACHE_DIR
        dspec["strategy"] = {"type": "Recreate"}
    else:
        dspec["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    template["metadata"]["annotations"] = {
        CONFIG_HASH_ANNOTATION: hashlib.sha256(config_text.encode()).hexdigest()
    }
    if variants is not None:
        template["metadata"]["annotations"][VARIANTS_ANNOTATION] = variants
    stamp_spec_hash(deployment, without_replicas=spec.autoscaling is not None)
    return deployment


def _cache_claim(
    spec: ClassifierServiceSpec, names: ClassifierNames, namespace: str, labels: Mapping[str, str]
) -> Obj | None:
    if spec.cache.store != "sqlite":
        return None
    pvc_spec: Obj = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": spec.cache.size}},
    }
    if spec.cache.storage_class_name:
        pvc_spec["storageClassName"] = spec.cache.storage_class_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": names.claim, "namespace": namespace, "labels": dict(labels)},
        "spec": pvc_spec,
    }


def _autoscaler(
    spec: ClassifierServiceSpec, names: ClassifierNames, namespace: str, labels: Mapping[str, str]
) -> Obj | None:
    a = spec.autoscaling
    if a is None:
        return None
    cpu = {"type": "Utilization", "averageUtilization": a.target_cpu_utilization}
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": names.hpa, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": names.deployment},
            "minReplicas": a.min_replicas,
            "maxReplicas": a.max_replicas,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": cpu}}],
        },
    }


def build_classifier_children(
    spec: ClassifierServiceSpec,
    *,
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    default_image: str,
    bind_host: str = "0.0.0.0",
    onnx_model: OnnxModel | None = None,
    experiment: ExperimentServing | None = None,
) -> ClassifierChildren:
    """The children of ClassifierService ``namespace/name``; ``labels`` go on all of them (and are the
    pods' selector). ``onnx_model`` is required with ``backend.type onnx``; ``experiment``: the
    ABExperiment whose variants the pods serve too."""
    names = classifier_names(name)
    volumes, model_path = _volumes(spec, names, onnx_model)
    variants: list[VariantSource] = []
    if experiment is not None:
        # The experiment's variants, the control first, each on its ModelVersion's ONNX file; the
        # split is read from the routing ConfigMap's mount (the contract's default file).
        more, paths = _experiment_volumes(name, experiment, onnx_model)
        volumes += more
        variants = [VariantSource(v.name, onnx_model_path=paths[v.name]) for v in experiment.variants]
    config = classifier_config_from_spec(
        spec,
        namespace=namespace,
        name=name,
        sqlite_path=SQLITE_FILE,  # relative to the working directory, the claim's mount
        host=bind_host,
        onnx_model_path=model_path,
        variants=variants,
    )
    document = config.model_dump(by_alias=True, mode="json", exclude_none=True)
    config_text = yaml.safe_dump(document, sort_keys=True, allow_unicode=True)
    secret_env = _secret_env(spec)
    deployment = _deployment(
        spec,
        names=names,
        namespace=namespace,
        labels=labels,
        default_image=default_image,
        volumes=volumes,
        secret_env=secret_env,
        config_text=config_text,
        variants=experiment.annotation() if experiment is not None else None,
    )
    return ClassifierChildren(
        names=names,
        config_map=build_configmap(
            name=names.config_map, namespace=namespace, labels=labels, data={CONFIG_FILE: config_text}
        ),
        deployment=deployment,
        service=build_service(
            name=names.service, namespace=namespace, labels=labels, selector=labels, port=spec.port
        ),
        pvc=_cache_claim(spec, names, namespace, labels),
        hpa=_autoscaler(spec, names, namespace, labels),
        secrets=tuple(secret_env.values()),
        endpoint=f"http://{names.service}.{namespace}.svc:{spec.port}",
        port=spec.port,
    )
