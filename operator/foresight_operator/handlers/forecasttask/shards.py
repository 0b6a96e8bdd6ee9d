"""Sharded runs (``spec.parallelism`` > 1): the plan Job, then the shards' Indexed Job, as one run.

A sharded run is two Jobs (why: :mod:`foresight_operator.builders.forecasttask_shards`). This module
is what the controller needs on top of a single-pod run:

- :func:`start_shards`: when a plan Job has succeeded, read its result and start the shards' Job
  (once: its name is deterministic);
- :func:`visible_runs`: one Job per run for the scheduler, the harvest and pruning (the shards'
  Job once it exists, else the plan Job);
- :func:`read_sharded_run`: a finished shards' Job as one :class:`~.results.Harvest`: each index's
  outcome from the Job's ``completedIndexes`` / ``failedIndexes`` and its pods' termination
  messages, folded into one result (:mod:`foresight.contract.shard_results`: series, models, backtest, bands,
  alert, data quality) and ``status.shards``. Some shards failed: the run succeeded (its other
  shards wrote their forecasts) and the report says which failed, so status turns ``Degraded``;
  all failed: the run failed as its shards did (bad input blocks the task, an outage is retried);
- :func:`shards_progress`: ``status.activeShards`` of a run under way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from foresight.api.forecasttask import ForecastReason, ForecastTaskSpec
from foresight.contract.forecast import ForecastRunResult
from foresight.contract.shard_results import (
    merge_alerts,
    merge_backtests,
    merge_bands,
    merge_models,
    merge_quality,
)
from foresight.kube import JOBS

from ...builders.forecasttask import ForecastRun, parse_annotations
from ...builders.forecasttask_shards import (
    ANNOTATION_PLAN_JOB,
    build_shards_job,
    plan_result_of,
    shards_job_name,
    stage_of,
)
from ...reconcile import JobState, job_pods, job_state, parse_time
from ...reconcile.pods import ended, terminated
from ...schedule import Outcome, RunKind
from ..children import make_child
from ..context import HandlerContext
from .results import LAST_WORDS, Harvest, outcome_of

__all__ = [
    "INDEX_LABEL",
    "index_ranges",
    "merge_backtests",
    "merge_models",
    "read_plan_job",
    "read_sharded_run",
    "shards_progress",
    "start_shards",
    "visible_runs",
]

Obj = dict[str, Any]
INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
"""On every pod of an Indexed Job (label and annotation): its index."""
MESSAGE_CHARS = 400


def index_ranges(text: str | None) -> set[int]:
    """Kubernetes' compressed index list (``1,3-5``) as a set."""
    out: set[int] = set()
    for part in (text or "").split(","):
        if not part.strip():
            continue
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def _run_of(job: Mapping[str, Any], kind: RunKind) -> ForecastRun | None:
    parsed = parse_annotations((job.get("metadata") or {}).get("annotations") or {})
    if parsed is None:
        return None
    scheduled, attempt, generation = parsed
    return ForecastRun(kind, scheduled, attempt, generation)


def _last_result(pods: Sequence[Mapping[str, Any]]) -> tuple[ForecastRunResult | None, Mapping[str, Any]]:
    """The newest ended pod's result (``None``: it left none) and its terminated state."""
    last = ended(pods)
    term: Mapping[str, Any] = (terminated(last[-1]) or {}) if last else {}
    return ForecastRunResult.from_termination_message(str(term.get("message") or "")), term


def start_shards(
    ctx: HandlerContext,
    body: Mapping[str, Any],
    spec: ForecastTaskSpec,
    jobs: list[Obj],
    kind_of: Callable[[Mapping[str, Any]], RunKind],
) -> None:
    """Start the shards' Job of every succeeded plan Job that has none yet (appended to ``jobs``).

    A plan Job whose pod left no plan is left as it is: :func:`read_plan_job` reports it.
    """
    meta = body["metadata"]
    names = {j["metadata"]["name"] for j in jobs}
    for job in list(jobs):
        if stage_of(job) != "plan" or job_state(job) is not JobState.SUCCEEDED:
            continue
        run = _run_of(job, kind_of(job))
        if run is None or shards_job_name(meta["name"], run) in names:
            continue
        plan, _ = _last_result(job_pods(ctx.kube, meta["namespace"], job["metadata"]["name"]))
        if plan is None or plan.stage != "plan" or not plan.plan_prefix or not plan.shard_series:
            continue
        shards = build_shards_job(
            spec, name=meta["name"], namespace=meta["namespace"], run=run,
            default_image=ctx.settings.runtime_image, plan=plan, plan_job=job["metadata"]["name"],
        )  # fmt: skip
        made, _ = make_child(
            ctx, body, JOBS, shards,
            announce=f"Job {shards['metadata']['name']} runs the {len(plan.shard_series)} shards of plan "
            f"{plan.plan_id} ({sum(plan.shard_series)} series, mode {plan.shard_mode})",
            reason="ShardsStarted",
        )  # fmt: skip
        jobs.append(made)
        names.add(made["metadata"]["name"])


def visible_runs(jobs: Sequence[Obj]) -> list[Obj]:
    """One Job per run: a plan Job disappears behind the shards' Job that follows it."""
    followed = {
        ((j.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_PLAN_JOB)
        for j in jobs
        if stage_of(j) == "shards"
    }
    return [j for j in jobs if not (stage_of(j) == "plan" and j["metadata"]["name"] in followed)]


def read_plan_job(harvest: Harvest) -> Harvest:
    """A plan Job read as a run: its failure as it is; a success without a shards' Job after it
    (its pod left no plan) is a failed run."""
    if harvest.outcome is not Outcome.SUCCEEDED:
        return harvest
    return Harvest(
        harvest.job, harvest.kind, harvest.scheduled, harvest.attempt, Outcome.FAILED,
        ForecastReason.RUN_FAILED,
        f"plan Job {harvest.job} finished without a plan in its termination message ({harvest.message}); "
        "the next run plans again",
        harvest.finished, harvest.result,
    )  # fmt: skip


# ---- the shards of one Job ------------------------------------------------------------------------


def _shard_items(
    job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]], plan: ForecastRunResult | None
) -> tuple[list[Obj], dict[int, ForecastRunResult | None], dict[int, Mapping[str, Any]]]:
    """Per index: the status item, the newest result, the newest terminated state."""
    status = job.get("status") or {}
    done, failed = index_ranges(status.get("completedIndexes")), index_ranges(status.get("failedIndexes"))
    series = list((plan.shard_series if plan is not None else None) or [])
    total = int((job.get("spec") or {}).get("completions") or len(series))
    by_index: dict[int, list[Mapping[str, Any]]] = {}
    for pod in pods:
        raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(INDEX_LABEL)
        if raw is not None and str(raw).isdigit():
            by_index.setdefault(int(raw), []).append(pod)
    items, results, terms = [], {}, {}
    for i in range(total):
        mine = by_index.get(i, [])
        results[i], terms[i] = _last_result(mine)
        running = any((p.get("status") or {}).get("phase", "Pending") in ("Pending", "Running") for p in mine)
        phase = "Succeeded" if i in done else "Failed" if i in failed else "Running" if running else "Pending"
        item: Obj = {"index": i, "series": series[i] if i < len(series) else 0, "phase": phase,
                     "attempts": len(mine)}  # fmt: skip
        if phase == "Failed":
            item["message"] = _shard_failure(results[i], terms[i])[1][:MESSAGE_CHARS]
        items.append(item)
    return items, results, terms


def _shard_failure(result: ForecastRunResult | None, term: Mapping[str, Any]) -> tuple[str, str]:
    if result is not None and result.reason:
        return result.reason, result.message
    raw = str(term.get("message") or "")
    if raw:
        return ForecastReason.RUN_FAILED, f"no result; the pod's last words: {raw[-LAST_WORDS:]}"
    return (
        ForecastReason.RUN_FAILED,
        f"no result (container {term.get('reason') or 'not run'}, exit code {term.get('exitCode')})",
    )


def _summary(job: Mapping[str, Any], plan: ForecastRunResult | None, items: Sequence[Obj]) -> Obj:
    count = Counter(item["phase"] for item in items)
    total = len(items)
    ok, bad = count["Succeeded"], count["Failed"]
    progress = f"{ok}/{total}" + (f" ({bad} failed)" if bad else "")
    return {
        "planId": plan.plan_id if plan is not None else None,
        "job": (job.get("metadata") or {}).get("name"),
        "total": total,
        "succeeded": ok,
        "failed": bad,
        "running": count["Running"] + count["Pending"],
        "series": sum(item["series"] for item in items),
        "seriesSucceeded": sum(item["series"] for item in items if item["phase"] == "Succeeded"),
        "seriesFailed": sum(item["series"] for item in items if item["phase"] == "Failed"),
        "progress": progress,
        "items": list(items),
    }


def shards_progress(job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> Obj:
    """``status.activeShards`` of a shards' Job under way."""
    plan = plan_result_of(job)
    items, _, _ = _shard_items(job, pods, plan)
    return {k: v for k, v in _summary(job, plan, items).items() if v is not None}


def _latest(times: Sequence[str | None]) -> str | None:
    stamps = [(parse_time(t), t) for t in times if t]
    known = [(p, t) for p, t in stamps if p is not None]
    return max(known)[1] if known else None


def read_sharded_run(
    job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]], *, kind: RunKind, now: datetime
) -> Harvest:
    """A finished shards' Job as one run (see the module docstring); ``Harvest.shards`` is its
    ``status.shards``."""
    plan = plan_result_of(job)
    items, results, terms = _shard_items(job, pods, plan)
    summary = _summary(job, plan, items)
    meta = job.get("metadata") or {}
    parsed = parse_annotations(meta.get("annotations") or {})
    scheduled, attempt = (parsed[0], parsed[1]) if parsed else (now, 1)
    finished = parse_time((job.get("status") or {}).get("completionTime")) or now
    name = str(meta.get("name"))
    done = [(i, r) for i, item in enumerate(items) if item["phase"] == "Succeeded" and (r := results[i])]
    ok = [r for _, r in done]
    failed = [i for i, item in enumerate(items) if item["phase"] != "Succeeded"]
    shard_series = [r.series_count or 0 for r in ok]
    result = ForecastRunResult(
        phase="Ready" if ok else "Failed", reason=ForecastReason.FORECASTS_WRITTEN, message="",
        mode=(plan.mode if plan is not None else None) or "predict",
        series_count=sum(shard_series), model=merge_models([r.model for r in ok], shard_series),
        backtest=merge_backtests(ok) or None,
        artifact_uri=plan.artifact_uri if plan else None, sha256=plan.sha256 if plan else None,
        trained_models=plan.trained_models if plan else None,
        last_train_time=(plan.last_train_time if plan else None) or _latest([r.last_train_time for r in ok]),
        last_predict_time=_latest([r.last_predict_time for r in ok]),
        plan_id=plan.plan_id if plan else None, shard_series=plan.shard_series if plan else None,
        bands=merge_bands(done), alert=merge_alerts(done), data_quality=merge_quality(done),
    )  # fmt: skip
    if not failed:
        result.message = (f"{result.series_count} series forecast in {len(items)} shards"
                          + (f" with {result.model}" if result.model else ""))  # fmt: skip
        return Harvest(name, kind, scheduled, attempt, Outcome.SUCCEEDED, result.reason, result.message,
                       finished, result, shards=summary)  # fmt: skip
    first = failed[0]
    reason, why = _shard_failure(results[first], terms[first])
    which = ", ".join(str(i) for i in failed[:10]) + (" ..." if len(failed) > 10 else "")
    if ok:
        result.message = (
            f"{result.series_count} series forecast in {len(ok)} of {len(items)} shards; shard(s) {which} "
            f"failed ({summary['seriesFailed']} series without fresh forecasts), shard {first}: {why}"
        )
        return Harvest(name, kind, scheduled, attempt, Outcome.SUCCEEDED, result.reason, result.message,
                       finished, result, shards=summary)  # fmt: skip
    result.reason, result.message = reason, f"all {len(items)} shards failed; shard {first}: {why}"
    result.retryable = bool(results[first] is not None and results[first].retryable)  # type: ignore[union-attr]
    outcome = outcome_of(reason, results[first], terms[first].get("exitCode"))
    return Harvest(name, kind, scheduled, attempt, outcome, reason, result.message, finished, result,
                   shards=summary)  # fmt: skip
