"""Pod-level pieces shared by the Job and Deployment builders: resources, placement, volumes, env.

Pure functions: API models in, manifest dicts out, no client calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from foresight.api.meta import Placement, Resources, SecretKeyRef

__all__ = [
    "GPU_RESOURCE",
    "TERMINATION_LOG",
    "Volume",
    "container_env",
    "placement_fields",
    "resource_requirements",
    "volume_fields",
]

Obj = dict[str, Any]
GPU_RESOURCE = "nvidia.com/gpu"
TERMINATION_LOG = "/dev/termination-log"


@dataclass(frozen=True)
class Volume:
    """A volume mounted into the container: exactly one of ``config_map``, ``claim``, ``empty_dir``."""

    name: str
    mount_path: str
    config_map: str | None = None
    claim: str | None = None
    empty_dir: bool = False
    read_only: bool = False

    def source(self) -> Obj:
        if self.config_map is not None:
            return {"configMap": {"name": self.config_map}}
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


def container_env(env: Mapping[str, str], secret_env: Mapping[str, SecretKeyRef]) -> list[Obj]:
    """Literal values first (sorted, so the manifest is stable), then values from Secrets."""
    out: list[Obj] = [{"name": k, "value": v} for k, v in sorted(env.items())]
    out.extend(
        {"name": k, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}
        for k, ref in sorted(secret_env.items())
    )
    return out
