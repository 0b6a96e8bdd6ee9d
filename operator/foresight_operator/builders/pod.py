"""Pod-level pieces shared by the Job, RayJob and Deployment builders: resources, placement, volumes, env.

Pure functions: API models in, manifest dicts out, no client calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from foresight.api.meta import Placement, Resources, SecretKeyRef
from foresight.contract import env as pod_env

__all__ = [
    "GPU_RESOURCE",
    "TERMINATION_LOG",
    "Volume",
    "build_container",
    "container_env",
    "placement_fields",
    "resource_requirements",
    "run_env",
    "volume_fields",
]

Obj = dict[str, Any]
GPU_RESOURCE = "nvidia.com/gpu"
TERMINATION_LOG = pod_env.TERMINATION_LOG_PATH
"""The container's ``terminationMessagePath``, where the runtime writes its result."""


@dataclass(frozen=True)
class Volume:
    """A volume mounted into the container: exactly one of ``config_map``, ``claim``, ``empty_dir``."""

    name: str
    mount_path: str
    config_map: str | None = None
    claim: str | None = None
    empty_dir: bool = False
    read_only: bool = False
    optional: bool = False
    """A ConfigMap that may be missing (the pod starts without the files, and gets them when it appears)."""

    def source(self) -> Obj:
        if self.config_map is not None:
            cm: Obj = {"name": self.config_map}
            if self.optional:
                cm["optional"] = True
            return {"configMap": cm}
        if self.claim is not None:
            return {"persistentVolumeClaim": {"claimName": self.claim}}
        if self.empty_dir:
            return {"emptyDir": {}}
        raise ValueError(f"volume {self.name!r} has no source: set config_map, claim or empty_dir")


def resource_requirements(res: Resources) -> Obj:
    """requests cpu/memory (+GPU), limits memory (+cpuLimit, +GPU: extended resources need both)."""
    requests: Obj = {"cpu": res.cpu, "memory": res.memory}
    limits: Obj = {"memory": res.memory}
    if res.cpu_limit is not None:
        limits["cpu"] = res.cpu_limit
    if res.gpu:
        requests[GPU_RESOURCE] = str(res.gpu)
        limits[GPU_RESOURCE] = str(res.gpu)
    return {"requests": requests, "limits": limits}


def placement_fields(placement: Placement) -> Obj:
    """The pod spec fields of a :class:`Placement` (only those that are set)."""
    out: Obj = {}
    if placement.node_selector:
        out["nodeSelector"] = dict(placement.node_selector)
    if placement.tolerations:
        out["tolerations"] = [t.to_wire() for t in placement.tolerations]
    if placement.priority_class_name:
        out["priorityClassName"] = placement.priority_class_name
    if placement.service_account_name:
        out["serviceAccountName"] = placement.service_account_name
    return out


def volume_fields(volumes: Sequence[Volume]) -> tuple[list[Obj], list[Obj]]:
    """``(pod volumes, container volumeMounts)``."""
    pod = [{"name": v.name, **v.source()} for v in volumes]
    mounts: list[Obj] = []
    for v in volumes:
        mount: Obj = {"name": v.name, "mountPath": v.mount_path}
        if v.read_only:
            mount["readOnly"] = True
        mounts.append(mount)
    return pod, mounts


def build_container(
    *,
    name: str,
    image: str,
    pull_policy: str,
    env: Mapping[str, str],
    secret_env: Mapping[str, SecretKeyRef],
    resources: Resources,
    volumes: Sequence[Volume] = (),
    command: Sequence[str] = (),
    args: Sequence[str] = (),
    working_dir: str | None = None,
    ports: Sequence[Obj] = (),
) -> Obj:
    """One container of the runtime image: what every Job, Deployment and RayJob pod runs.

    ``env`` is taken as given (see :func:`run_env` for pods that run to completion); the mounts of
    ``volumes`` are added (the pod spec gets the volumes themselves from :func:`volume_fields`).
    """
    container: Obj = {
        "name": name,
        "image": image,
        "imagePullPolicy": pull_policy,
        "env": container_env(env, secret_env),
        "resources": resource_requirements(resources),
    }
    if command:
        container["command"] = list(command)
    if args:
        container["args"] = list(args)
    _, mounts = volume_fields(volumes)
    if mounts:
        container["volumeMounts"] = mounts
    if working_dir:
        container["workingDir"] = working_dir
    if ports:
        container["ports"] = [dict(p) for p in ports]
    return container


def run_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a pod that runs to completion: where to write its termination message,
    unbuffered output (progress lines reach ``kubectl logs`` as they happen), then ``env``."""
    return {pod_env.TERMINATION_LOG: TERMINATION_LOG, "PYTHONUNBUFFERED": "1", **(env or {})}


def container_env(env: Mapping[str, str], secret_env: Mapping[str, SecretKeyRef]) -> list[Obj]:
    """Literal values first (sorted, so the manifest is stable), then values from Secrets."""
    out: list[Obj] = [{"name": k, "value": v} for k, v in sorted(env.items())]
    out.extend(
        {"name": k, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}
        for k, ref in sorted(secret_env.items())
    )
    return out
