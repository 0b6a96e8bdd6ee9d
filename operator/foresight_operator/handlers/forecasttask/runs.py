"""A task's run Jobs as the scheduler's memory: listing them, their kind, the history, pruning.

Every run is a Job whose annotations say which slot it ran (scheduled time, attempt, generation);
the newest Job of each run kind is what :func:`~foresight_operator.schedule.plan_runs` plans from,
so a restarted operator computes the same schedule.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from foresight.kube import JOBS, KubeApiError, KubeClient

from ...builders.forecasttask import (
    ANNOTATION_ATTEMPT,
    ANNOTATION_SCHEDULED,
    KIND,
    RUN_KIND_LABEL,
    parse_annotations,
)
from ...reconcile import JobState, job_state, owner_selector, parse_time
from ...schedule import Outcome, PastRun, RunKind
from .results import OUTCOME_ANNOTATION, Harvest

__all__ = ["HISTORY_LIMIT", "prune_runs", "run_history", "run_jobs", "run_kind"]

log = logging.getLogger(__name__)
Obj = dict[str, Any]
HISTORY_LIMIT = 3
"""Finished run Jobs kept per run kind (the newest of each kind is the scheduler's memory)."""


def run_jobs(kube: KubeClient, namespace: str, name: str) -> list[Obj]:
    """The run Jobs of task ``namespace/name`` (owned children carrying a run's annotations)."""
    jobs = kube.list(JOBS, namespace, label_selector=owner_selector(KIND, name))
    return [j for j in jobs if parse_annotations((j.get("metadata") or {}).get("annotations") or {})]


def run_kind(job: Mapping[str, Any]) -> RunKind:
    kind = ((job.get("metadata") or {}).get("labels") or {}).get(RUN_KIND_LABEL)
    return "train" if kind == "train" else "predict"


def _past_run(job: Obj, harvested: Mapping[str, Harvest]) -> PastRun:
    meta = job["metadata"]
    parsed = parse_annotations(meta.get("annotations") or {})
    assert parsed is not None  # run_jobs keeps only Jobs with a run's annotations
    scheduled, attempt, generation = parsed
    h = harvested.get(meta["name"])
    if job_state(job) is JobState.RUNNING:
        outcome, finished = Outcome.RUNNING, None
    elif h is not None:
        outcome, finished = h.outcome, h.finished
    else:
        raw = str((meta.get("annotations") or {}).get(OUTCOME_ANNOTATION))
        outcome = Outcome(raw) if raw in {o.value for o in Outcome} else Outcome.FAILED
        finished = parse_time((job.get("status") or {}).get("completionTime")) or scheduled
    return PastRun(run_kind(job), scheduled, attempt, generation, outcome, finished)


def run_history(
    jobs: Sequence[Obj], harvested: Mapping[str, Harvest], status: Mapping[str, Any]
) -> list[PastRun]:
    """The task's runs as the scheduler sees them: its Jobs, or, when they were deleted by hand,
    the last train and predict times its status still records."""
    runs = [_past_run(job, harvested) for job in jobs]
    if not runs:
        gen = status.get("observedGeneration")
        for kind, key in (("train", "lastTrainTime"), ("predict", "lastPredictTime")):
            t = parse_time(status.get(key))
            if t is not None:
                runs.append(PastRun(kind, t, 1, gen, Outcome.SUCCEEDED, t))  # type: ignore[arg-type]
    return runs


def prune_runs(kube: KubeClient, namespace: str, jobs: Sequence[Obj]) -> None:
    """Delete all but the newest :data:`HISTORY_LIMIT` finished runs of each run kind, each with
    all its Jobs (a sharded run's plan Job and shards' Job share its annotations)."""
    runs: dict[tuple[str, str, str], list[Obj]] = {}
    for job in jobs:
        ann = job["metadata"]["annotations"]
        key = (run_kind(job), ann[ANNOTATION_SCHEDULED], str(ann.get(ANNOTATION_ATTEMPT, "1")))
        runs.setdefault(key, []).append(job)
    by_kind: dict[str, list[tuple[tuple[str, str], list[Obj]]]] = {}
    for (kind, scheduled, _), run_jobs_ in runs.items():
        if all(job_state(j) is not JobState.RUNNING for j in run_jobs_):
            created = max(j["metadata"].get("creationTimestamp") or "" for j in run_jobs_)
            by_kind.setdefault(kind, []).append(((scheduled, created), run_jobs_))
    for kind_runs in by_kind.values():
        kind_runs.sort(key=lambda r: r[0])
        for _, old in kind_runs[:-HISTORY_LIMIT]:
            for job in old:
                try:
                    kube.delete(JOBS, job["metadata"]["name"], namespace)
                except KubeApiError as exc:  # pruning is housekeeping: the next reconcile tries again
                    name = job["metadata"]["name"]
                    log.warning("could not delete old run Job %s/%s: %s", namespace, name, exc)
