"""``build_rayjob``: a ``distributed.backend: ray`` TrainingJob -> a KubeRay ``RayJob`` (ray.io/v1).

Pure. The RayJob runs the same :class:`~foresight_operator.builders.training.TrainingPlan` as the
single-pod Job: its entrypoint is the plan's command (``foresight train --config ...``), and the
head and every worker pod get the runtime image, the plan's volumes (the config ConfigMap, the
artifacts claim or work dir), env and Secret references, and ``spec.resources``. KubeRay creates
the Ray cluster (one head, ``distributed.workers`` workers), submits the entrypoint, and reports
``status.jobStatus`` / ``status.jobDeploymentStatus``, which :func:`rayjob_phase` maps to the
TrainingJob's phase.

``runPolicy`` maps to the RayJob's own fields: ``suspend``, ``activeDeadlineSeconds``,
``backoffLimit`` and ``ttlSecondsAfterFinished`` (with ``shutdownAfterJobFinishes``, so the Ray
cluster does not outlive the training).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from foresight.api.meta import Placement, Reason, Resources, RunPolicy
from foresight.api.trainingjob import TrainingPhase, TrainingReason

from .pod import build_container, placement_fields, run_env, volume_fields
from .training import TrainingPlan

__all__ = [
    "RAYJOB_API_VERSION",
    "RAYJOB_CRD",
    "RAY_VERSION",
    "build_rayjob",
    "rayjob_phase",
]

Obj = dict[str, Any]
RAYJOB_API_VERSION = "ray.io/v1"
RAYJOB_CRD = "rayjobs.ray.io"
RAY_VERSION = "2.60.0"
"""The Ray version of the runtime image (KubeRay's ``rayVersion``: it picks compatible flags)."""


def _pod_template(
    plan: TrainingPlan,
    *,
    container_name: str,
    labels: Mapping[str, str],
    resources: Resources,
    placement: Placement,
    ports: Sequence[Obj] = (),
) -> Obj:
    pod_volumes, _ = volume_fields(plan.volumes)
    container = build_container(
        name=container_name,
        image=plan.image,
        pull_policy=plan.pull_policy,
        env=run_env(plan.env),
        secret_env=plan.secret_env,
        resources=resources,
        volumes=plan.volumes,
        working_dir=plan.working_dir,
        ports=ports,
    )
    spec: Obj = {"containers": [container], **placement_fields(placement)}
    if pod_volumes:
        spec["volumes"] = pod_volumes
    return {"metadata": {"labels": dict(labels)}, "spec": spec}


def build_rayjob(
    plan: TrainingPlan,
    *,
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    workers: int,
    resources: Resources,
    placement: Placement,
    run_policy: RunPolicy,
) -> Obj:
    """The RayJob manifest (no ownerReferences: the caller adopts it).

    ``workers`` is ``distributed.workers``: the worker group's replicas (min = max, no autoscaling),
    each with ``resources`` (per worker pod, as for the other backends); the head gets the same.
    """
    entrypoint = shlex.join([*plan.command, *plan.args])
    head = _pod_template(
        plan,
        container_name="ray-head",
        labels=labels,
        resources=resources,
        placement=placement,
        ports=(
            {"name": "gcs-server", "containerPort": 6379},
            {"name": "dashboard", "containerPort": 8265},
            {"name": "client", "containerPort": 10001},
        ),
    )
    worker = _pod_template(
        plan, container_name="ray-worker", labels=labels, resources=resources, placement=placement
    )
    spec: Obj = {
        "entrypoint": entrypoint,
        "submissionMode": "K8sJobMode",
        "shutdownAfterJobFinishes": True,
        "suspend": run_policy.suspend,
        "backoffLimit": run_policy.backoff_limit,
        "rayClusterSpec": {
            "rayVersion": RAY_VERSION,
            "headGroupSpec": {"rayStartParams": {"dashboard-host": "0.0.0.0"}, "template": head},
            "workerGroupSpecs": [
                {
                    "groupName": "workers",
                    "replicas": workers,
                    "minReplicas": workers,
                    "maxReplicas": workers,
                    "rayStartParams": {},
                    "template": worker,
                }
            ],
        },
    }
    if run_policy.active_deadline_seconds is not None:
        spec["activeDeadlineSeconds"] = run_policy.active_deadline_seconds
    if run_policy.ttl_seconds_after_finished is not None:
        spec["ttlSecondsAfterFinished"] = run_policy.ttl_seconds_after_finished
    return {
        "apiVersion": RAYJOB_API_VERSION,
        "kind": "RayJob",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": spec,
    }


def rayjob_phase(rayjob: Mapping[str, Any] | None) -> tuple[TrainingPhase, str, str]:
    """``(phase, reason, message)`` of a TrainingJob from its RayJob's status (pure).

    ``jobDeploymentStatus`` says where KubeRay is (Initializing, Running, Complete, Failed,
    Suspended, ...); ``jobStatus`` is the Ray job's own state (PENDING, RUNNING, SUCCEEDED, FAILED,
    STOPPED). A Ray job that ended decides; before that, the deployment status does.
    """
    if rayjob is None:
        return TrainingPhase.PENDING, Reason.PENDING, "creating the RayJob"
    status: Mapping[str, Any] = rayjob.get("status") or {}
    job_status = str(status.get("jobStatus") or "").upper()
    deployment = str(status.get("jobDeploymentStatus") or "")
    ray_message = str(status.get("message") or "")
    name = (rayjob.get("metadata") or {}).get("name", "")
    if job_status == "SUCCEEDED":
        return TrainingPhase.SUCCEEDED, Reason.SUCCEEDED, "training finished in RayJob " + name
    if job_status in ("FAILED", "STOPPED") or deployment == "Failed":
        reason = str(status.get("reason") or TrainingReason.RAY_JOB_FAILED)
        what = f"RayJob {name} ended: jobStatus {job_status or '-'}, jobDeploymentStatus {deployment or '-'}"
        return TrainingPhase.FAILED, reason, f"{what}; {ray_message}" if ray_message else what
    if deployment == "Suspended" or (rayjob.get("spec") or {}).get("suspend"):
        return (
            TrainingPhase.SUSPENDED,
            Reason.SUSPENDED,
            "runPolicy.suspend is true: set it to false to start",
        )
    if job_status == "RUNNING" or deployment == "Running":
        return TrainingPhase.RUNNING, Reason.RUNNING, f"training in RayJob {name}"
    return TrainingPhase.PENDING, Reason.PENDING, f"RayJob {name}: {deployment or 'waiting for KubeRay'}"
