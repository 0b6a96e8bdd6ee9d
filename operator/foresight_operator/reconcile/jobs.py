"""A batch/v1 Job's state and its pods, as every kind that runs Jobs reads them (pure, plus one list).

A Job has finished when its ``Complete`` or ``Failed`` condition is True; until then it runs (or
waits for its pods). Its pods carry the ``batch.kubernetes.io/job-name`` label.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from foresight.kube import PODS, KubeClient

__all__ = ["JOB_NAME_LABEL", "JobState", "job_pods", "job_state", "pods_worth_reading", "true_condition"]

Obj = dict[str, Any]
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"


class JobState(StrEnum):
    RUNNING = "Running"
    """Not finished: running, or waiting for its pods."""
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


def true_condition(job: Mapping[str, Any] | None, ctype: str) -> Obj | None:
    """The Job's condition ``ctype`` when its status is True, else ``None``."""
    for cond in ((job or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == ctype and cond.get("status") == "True":
            return dict(cond)
    return None


def job_state(job: Mapping[str, Any]) -> JobState:
    """``Succeeded`` (``Complete`` is True), ``Failed`` (``Failed`` is True) or ``Running``."""
    if true_condition(job, "Complete") is not None:
        return JobState.SUCCEEDED
    if true_condition(job, "Failed") is not None:
        return JobState.FAILED
    return JobState.RUNNING


def pods_worth_reading(job: Mapping[str, Any] | None) -> bool:
    """Whether the Job's pods may hold a result: it finished, or one of its pods failed."""
    status = (job or {}).get("status") or {}
    return job is not None and bool(status.get("conditions") or status.get("failed"))


def job_pods(kube: KubeClient, namespace: str, job: str) -> list[Obj]:
    """The pods of Job ``namespace/job`` (those Kubernetes made for it, by their job-name label)."""
    return kube.list(PODS, namespace, label_selector=f"{JOB_NAME_LABEL}={job}")
