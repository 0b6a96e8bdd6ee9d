"""``build_deployment`` + ``build_service``: long-running pods of the runtime image and their Service.

For ClassifierService serving pods (and A/B routing later), and the headless Service of a DDP
TrainingJob (``headless=True``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from foresight.api.meta import Placement, Resources, SecretKeyRef

from ..reconcile.updates import SPEC_HASH_ANNOTATION
from .pod import Volume, build_container, placement_fields, volume_fields

__all__ = ["build_deployment", "build_service", "liveness_probe", "stamp_spec_hash"]

Obj = dict[str, Any]


def build_deployment(
    *,
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    selector: Mapping[str, str],
    image: str,
    command: Sequence[str],
    args: Sequence[str] = (),
    port: int,
    port_name: str = "http",
    replicas: int = 1,
    env: Mapping[str, str] | None = None,
    secret_env: Mapping[str, SecretKeyRef] | None = None,
    resources: Resources | None = None,
    placement: Placement | None = None,
    pull_policy: str = "IfNotPresent",
    volumes: Sequence[Volume] = (),
    readiness_path: str | None = "/healthz",
    container_name: str = "main",
) -> Obj:
    """A Deployment whose pods carry ``labels`` (which must include ``selector``)."""
    missing = {k: v for k, v in selector.items() if labels.get(k) != v}
    if missing:
        raise ValueError(f"the pod labels must include the selector; missing {missing}")
    pod_volumes, _ = volume_fields(volumes)
    container = build_container(
        name=container_name,
        image=image,
        pull_policy=pull_policy,
        command=command,
        args=args,
        env={"PYTHONUNBUFFERED": "1", **(env or {})},
        secret_env=secret_env or {},
        resources=resources or Resources(),
        volumes=volumes,
        ports=[{"name": port_name, "containerPort": port, "protocol": "TCP"}],
    )
    if readiness_path:
        container["readinessProbe"] = {
            "httpGet": {"path": readiness_path, "port": port_name},
            "periodSeconds": 5,
            "failureThreshold": 3,
        }
    pod_spec: Obj = {"containers": [container], **placement_fields(placement or Placement())}
    if pod_volumes:
        pod_spec["volumes"] = pod_volumes
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(selector)},
            "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
        },
    }


def liveness_probe(path: str) -> Obj:
    """A generous liveness probe: a pod that cannot reach its store answers 503 and readiness takes it
    out of the Service long before this restarts it."""
    return {
        "httpGet": {"path": path, "port": "http"},
        "initialDelaySeconds": 10,
        "periodSeconds": 20,
        "failureThreshold": 6,
    }


def stamp_spec_hash(deployment: Obj, *, without_replicas: bool = False) -> None:
    """Annotate ``deployment`` with the SHA-256 of its spec (:data:`SPEC_HASH_ANNOTATION`), so the
    handler patches it only when what the operator wants changed (``without_replicas``: an HPA owns
    the count, so a different count is no change)."""
    spec = {k: v for k, v in deployment["spec"].items() if not (without_replicas and k == "replicas")}
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    deployment["metadata"].setdefault("annotations", {})[SPEC_HASH_ANNOTATION] = digest


def build_service(
    *,
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    selector: Mapping[str, str],
    port: int,
    target_port: int | str = "http",
    port_name: str = "http",
    headless: bool = False,
) -> Obj:
    """A ClusterIP Service (or a headless one, for stable per-pod DNS names)."""
    spec: Obj = {
        "selector": dict(selector),
        "ports": [{"name": port_name, "port": port, "targetPort": target_port, "protocol": "TCP"}],
    }
    if headless:
        spec["clusterIP"] = "None"
        # DDP workers must resolve each other before they are ready.
        spec["publishNotReadyAddresses"] = True
    else:
        spec["type"] = "ClusterIP"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": spec,
    }
