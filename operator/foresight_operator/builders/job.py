"""``build_job``: a batch/v1 Job that runs one command of the runtime image.

Used for training, forecast, verification and fetch runs. The pod never writes to the API: its
result goes into the termination message (``terminationMessagePath``), which the operator reads
from the pod status.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from foresight.api.meta import Placement, Resources, RunPolicy, SecretKeyRef

from .pod import TERMINATION_LOG, Volume, build_container, placement_fields, run_env, volume_fields

__all__ = ["build_job"]

Obj = dict[str, Any]


def build_job(
    *,
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    image: str,
    command: Sequence[str],
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    secret_env: Mapping[str, SecretKeyRef] | None = None,
    resources: Resources | None = None,
    placement: Placement | None = None,
    run_policy: RunPolicy | None = None,
    pull_policy: str = "IfNotPresent",
    volumes: Sequence[Volume] = (),
    working_dir: str | None = None,
    container_name: str = "main",
) -> Obj:
    """The Job manifest (no ownerReferences: the caller adopts it).

    ``run_policy`` maps to backoffLimit, activeDeadlineSeconds, ttlSecondsAfterFinished and
    suspend. The container gets ``FORESIGHT_TERMINATION_LOG`` pointing at its termination message
    path, so the runtime writes its result where the kubelet reads it.
    """
    policy = run_policy or RunPolicy()
    pod_volumes, _ = volume_fields(volumes)
    container = build_container(
        name=container_name,
        image=image,
        pull_policy=pull_policy,
        command=command,
        args=args,
        env=run_env(env),
        secret_env=secret_env or {},
        resources=resources or Resources(),
        volumes=volumes,
        working_dir=working_dir,
    )
    container["terminationMessagePath"] = TERMINATION_LOG
    # A crash before the runtime writes its message still leaves the log tail as the message.
    container["terminationMessagePolicy"] = "FallbackToLogsOnError"
    pod_spec: Obj = {
        "restartPolicy": "Never",
        "containers": [container],
        **placement_fields(placement or Placement()),
    }
    if pod_volumes:
        pod_spec["volumes"] = pod_volumes
    spec: Obj = {
        "backoffLimit": policy.backoff_limit,
        "suspend": policy.suspend,
        "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
    }
    if policy.active_deadline_seconds is not None:
        spec["activeDeadlineSeconds"] = policy.active_deadline_seconds
    if policy.ttl_seconds_after_finished is not None:
        spec["ttlSecondsAfterFinished"] = policy.ttl_seconds_after_finished
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": spec,
    }
