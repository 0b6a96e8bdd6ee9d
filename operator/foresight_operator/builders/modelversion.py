"""``plan_verify``: a ModelVersion spec -> the verify Job's config file, volumes, env and Secrets.

Pure. The Job runs ``foresight model-job --config <file>`` (:mod:`foresight.registry.verify`).
One Job per *verify key*: a hash of the parts of the spec that change what the Job does
(``framework``, ``artifact``, ``optimize``), so changing ``stage``, ``metrics`` or ``description``
starts nothing, and re-applying the same spec finds the Job that already ran.

A ``pvc://claim/...`` artifact mounts the claim at ``/var/foresight/pvc/<claim>`` and tells the
runtime where through ``FORESIGHT_PVC_MOUNTS`` (JSON ``{claim: mountPath}``). The runtime writes
the optimised artifacts back next to the original, so the claim is mounted read-write. An
``s3://`` artifact gets the S3 environment of its store (:func:`foresight.contract.s3.s3_pod_env`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from foresight.api.meta import Reason, SecretKeyRef
from foresight.api.modelversion import ModelVersionSpec
from foresight.contract import env as pod_env
from foresight.contract.s3 import s3_pod_env

from ..reconcile.errors import SpecError
from ..reconcile.names import child_name
from .pod import Volume

__all__ = [
    "CONFIG_DIR",
    "CONFIG_FILE",
    "PVC_ROOT",
    "VerifyPlan",
    "plan_verify",
    "verify_key",
    "verify_name",
]

Obj = dict[str, Any]
CONFIG_DIR = "/etc/foresight/modelversion"
CONFIG_FILE = "modelversion.yaml"
PVC_ROOT = "/var/foresight/pvc"
WORK_MOUNT = "/var/foresight/work"


@dataclass(frozen=True)
class VerifyPlan:
    key: str
    """The verify key (10 hex characters) this plan is for."""
    name: str
    """Name of both the Job and its ConfigMap."""
    config: Obj
    """The job's config file (name, namespace, generation, spec)."""
    image: str
    pull_policy: str
    command: tuple[str, ...]
    volumes: tuple[Volume, ...]
    working_dir: str
    env: dict[str, str] = field(default_factory=dict)
    secret_env: dict[str, SecretKeyRef] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    """Secrets the pod reads: they must exist before the Job is created."""


def verify_key(spec: ModelVersionSpec) -> str:
    """A stable hash of what the verify Job depends on."""
    wire = spec.to_wire()
    basis = {k: wire.get(k) for k in ("framework", "artifact", "optimize")}
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()[:10]


def verify_name(name: str, key: str) -> str:
    return child_name(name, f"verify-{key}")


def plan_verify(
    spec: ModelVersionSpec,
    *,
    namespace: str,
    name: str,
    generation: int | None,
    default_image: str,
) -> VerifyPlan:
    """Everything the verify Job of ``namespace/name`` needs (raises :class:`SpecError` if it cannot run)."""
    key = verify_key(spec)
    uri = spec.artifact.uri
    volumes: list[Volume] = []
    env: dict[str, str] = {"TMPDIR": WORK_MOUNT}
    secret_env: dict[str, SecretKeyRef] = {}
    secrets: tuple[str, ...] = ()
    if uri.startswith("pvc://"):
        claim = uri[len("pvc://") :].partition("/")[0]
        if not claim:
            raise SpecError(f"{uri!r} has no claim name: use pvc://<claim>/<path>", field="artifact.uri")
        mount = f"{PVC_ROOT}/{claim}"
        volumes.append(Volume(name="artifacts", mount_path=mount, claim=claim))
        env[pod_env.PVC_MOUNTS] = json.dumps({claim: mount})
    elif uri.startswith("s3://"):
        s3 = s3_pod_env(spec.artifact.store)
        env.update(s3.env)
        secret_env, secrets = s3.secret_env, s3.secrets
    else:
        raise SpecError(
            f"{uri!r}: file:// artifacts exist only in local mode; in a cluster use pvc://<claim>/<path> "
            "or s3://<bucket>/<key>",
            reason=Reason.UNSUPPORTED_URI,
            field="artifact.uri",
        )
    volumes.append(
        Volume(name="config", mount_path=CONFIG_DIR, config_map=verify_name(name, key), read_only=True)
    )
    volumes.append(Volume(name="work", mount_path=WORK_MOUNT, empty_dir=True))
    return VerifyPlan(
        key=key,
        name=verify_name(name, key),
        config={"name": name, "namespace": namespace, "generation": generation, "spec": spec.to_wire()},
        image=spec.runtime.image or default_image,
        pull_policy=spec.runtime.pull_policy,
        command=("foresight", "model-job", "--config", f"{CONFIG_DIR}/{CONFIG_FILE}"),
        volumes=tuple(volumes),
        working_dir=WORK_MOUNT,
        env=env,
        secret_env=secret_env,
        secrets=secrets,
    )
