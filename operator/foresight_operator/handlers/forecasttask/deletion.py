"""Deleting a task: stop its runs, then delete its Pushgateway group (what its runs pushed).

A finalizer holds the deletion until the group is gone. The group is deleted only when a run may
have pushed one (a task whose runs never started has none, and its deletion must not wait on a
Pushgateway that may not exist). The DELETE goes to the group's URL as the runtime pushed it
(:func:`foresight.contract.pushgateway.group_url`); an unreachable Pushgateway is retried by kopf
five times (10 s, 20 s... apart), then given up with a Warning event, so a task is never stuck.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import requests
from foresight.api.forecasttask import ForecastReason, ForecastTaskSpec
from foresight.contract.forecast import PUSHGATEWAY_JOB, pushgateway_group
from foresight.contract.pushgateway import group_url
from foresight.kube import JOBS

from ...reconcile import JobState, job_pods, job_state
from ..context import HandlerContext
from .runs import run_jobs

__all__ = ["DELETE_TIMEOUT", "GIVE_UP_AFTER", "delete_pushgateway_group", "delete_task_runs"]

Obj = dict[str, Any]
DELETE_TIMEOUT = 10.0
"""Seconds one DELETE may take."""
GIVE_UP_AFTER = 5
"""Retries of an unreachable Pushgateway before the group is given up (with a Warning event)."""


def _may_have_pushed(ctx: HandlerContext, body: Mapping[str, Any], jobs: Sequence[Obj]) -> bool:
    """Whether a run of the task can have pushed forecasts: one reported, succeeded or started."""
    if (body.get("status") or {}).get("lastPredictTime"):
        return True
    namespace = body["metadata"]["namespace"]
    for job in jobs:
        if job_state(job) is JobState.SUCCEEDED:
            return True
        pods = job_pods(ctx.kube, namespace, job["metadata"]["name"])
        if any((p.get("status") or {}).get("phase", "Pending") != "Pending" for p in pods):
            return True
    return False


def delete_pushgateway_group(gateway_url: str, grouping_key: Mapping[str, str]) -> None:
    """One DELETE of the group; raises :class:`OSError` (``requests``' errors are) when it did not go."""
    url = group_url(gateway_url, job=PUSHGATEWAY_JOB, grouping_key=grouping_key)
    resp = requests.delete(url, timeout=DELETE_TIMEOUT)
    if resp.status_code >= 300:  # 202 Accepted, also for a group that does not exist
        raise requests.HTTPError(f"HTTP {resp.status_code} from {url}: {resp.text[:300]}", response=resp)


def delete_task_runs(ctx: HandlerContext, body: Mapping[str, Any], retry: int) -> None:
    """Stop the task's runs, then delete its Pushgateway group when a run may have pushed one."""
    import kopf

    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    try:
        spec = ForecastTaskSpec.model_validate(dict(body.get("spec") or {}))
    except ValueError:
        return  # an invalid task never ran, so it never pushed
    jobs = run_jobs(ctx.kube, namespace, name)
    pushed = _may_have_pushed(ctx, body, jobs)
    # A run still under way would push again after the group is gone.
    for job in jobs:
        if job_state(job) is JobState.RUNNING:
            ctx.kube.delete(JOBS, job["metadata"]["name"], namespace)
    if spec.output.mode != "pushgateway" or not pushed:
        return
    key = pushgateway_group(namespace, name)
    try:
        delete_pushgateway_group(spec.output.pushgateway_url, key)
    except OSError as exc:
        if retry < GIVE_UP_AFTER:
            raise kopf.TemporaryError(
                f"Pushgateway group {key} not deleted yet ({exc}); retrying", delay=10 * (retry + 1)
            ) from exc
        ctx.post_event(
            body, "Warning", ForecastReason.PUSHGATEWAY_UNAVAILABLE,
            f"gave up deleting Pushgateway group {key} at {spec.output.pushgateway_url}"
            f" after {retry + 1} tries ({exc}); delete it by hand",
        )  # fmt: skip
