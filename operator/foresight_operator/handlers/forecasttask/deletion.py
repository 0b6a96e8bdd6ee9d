"""Deleting a task: stop its runs, then delete its Pushgateway groups (what its runs pushed).

A task has one group, or one per shard when its runs were sharded (``shard`` label): the groups
are listed from the gateway (``/api/v1/metrics``) and every one of the task's is deleted
(:func:`task_group_keys`; when the listing fails, the single group and those of the spec's shards).
A finalizer holds the deletion until the groups are gone. The group is deleted only when a run may
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
from foresight.contract.forecast import PUSHGATEWAY_JOB, pushgateway_group, stale_groups, task_groups
from foresight.contract.pushgateway import group_url
from foresight.kube import JOBS

from ...reconcile import JobState, job_pods, job_state
from ..context import HandlerContext
from .runs import run_jobs

__all__ = [
    "DELETE_TIMEOUT",
    "GIVE_UP_AFTER",
    "delete_pushgateway_group",
    "delete_task_runs",
    "drop_shard_groups",
    "task_group_keys",
]

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


def _held_groups(gateway_url: str) -> list[dict[str, str]]:
    """The grouping keys (``job`` included) the Pushgateway holds; raises ``OSError`` / ``ValueError``."""
    url = group_url(gateway_url, job="x", grouping_key={}).split("/metrics/", 1)[0] + "/api/v1/metrics"
    resp = requests.get(url, timeout=DELETE_TIMEOUT)
    resp.raise_for_status()
    return [{str(k): str(v) for k, v in (g.get("labels") or {}).items()} for g in resp.json()["data"]]


def task_group_keys(gateway_url: str, namespace: str, name: str, parallelism: int) -> list[dict[str, str]]:
    """Every Pushgateway group of task ``namespace/name``: as listed by the gateway, or, when it
    cannot be listed, the single-pod group and those of ``parallelism`` shards."""
    try:
        return task_groups(_held_groups(gateway_url), namespace, name)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        shards = range(parallelism) if parallelism > 1 else range(0)
        return [pushgateway_group(namespace, name)] + [pushgateway_group(namespace, name, i) for i in shards]


def drop_shard_groups(ctx: HandlerContext, body: Mapping[str, Any], spec: ForecastTaskSpec) -> None:
    """After a single-pod run of a task that was sharded: delete the shards' groups, which would
    keep the sharded runs' forecasts of the same series. Best effort (logged, then retried by the
    next single-pod run's harvest, as long as status still says the task was sharded)."""
    meta = body["metadata"]
    try:
        held = _held_groups(spec.output.pushgateway_url)
        for key in stale_groups(held, meta["namespace"], meta["name"], 1):
            delete_pushgateway_group(spec.output.pushgateway_url, key)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        ctx.post_event(
            body, "Warning", ForecastReason.PUSHGATEWAY_UNAVAILABLE,
            f"could not delete the shards' Pushgateway groups of the earlier sharded runs ({exc}); they keep "
            "old forecasts until deleted",
        )  # fmt: skip


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
    keys = task_group_keys(spec.output.pushgateway_url, namespace, name, spec.parallelism)
    try:
        for key in keys:
            delete_pushgateway_group(spec.output.pushgateway_url, key)
    except OSError as exc:
        if retry < GIVE_UP_AFTER:
            raise kopf.TemporaryError(
                f"Pushgateway groups {keys} not deleted yet ({exc}); retrying", delay=10 * (retry + 1)
            ) from exc
        what = f"group {keys[0]}" if len(keys) == 1 else f"groups {keys}"
        ctx.post_event(
            body, "Warning", ForecastReason.PUSHGATEWAY_UNAVAILABLE,
            f"gave up deleting Pushgateway {what} at {spec.output.pushgateway_url}"
            f" after {retry + 1} tries ({exc}); delete {'it' if len(keys) == 1 else 'them'} by hand",
        )  # fmt: skip
