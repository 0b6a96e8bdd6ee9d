"""A ForecastTask's status, computed from what it was, the runs just harvested and the plan (pure).

``status`` records what the task's runs produced (series, model, backtest, artifact, the model
version in use, last train / predict times, what the last run found in its input:
``dataQuality`` and the ``StaleData`` condition), how they went (``Ready`` with the last run's
reason, ``Degraded`` after ``degraded_after`` failed runs in a row, ``consecutiveFailures``) and
what happens next (``phase``, ``Progressing``, ``activeRun``, ``nextRunTime``). A sharded run adds
``activeShards`` (per-shard progress while it runs) and ``shards`` (each shard's outcome once it
has finished, kept while the next run goes); when some of its shards failed the run still
succeeded and the task is ``Degraded`` (reason ``ShardsFailed``), not failed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from foresight.api.forecasttask import ForecastConditionType, ForecastPhase, ForecastReason, ForecastTaskSpec
from foresight.api.meta import ConditionType, Reason
from foresight.contract.forecast import BacktestScore, DataQualityReport

from ...builders.forecasttask import public_artifact_uri
from ...reconcile import find_condition, format_time, set_condition
from ...schedule import Outcome, Plan, RunKind
from .recommendation import recommendation_status
from .results import Harvest

__all__ = ["task_status"]

Obj = dict[str, Any]


class _Conditions:
    """The status' conditions while they are recomputed (every change through ``set_condition``)."""

    def __init__(
        self, conds: Sequence[Mapping[str, Any]] | None, generation: int | None, now: datetime
    ) -> None:
        self.list: list[Obj] = [dict(c) for c in conds or []]
        self.generation = generation
        self.now = now

    def set(self, ctype: str, value: str, reason: str, message: str) -> None:
        self.list = set_condition(
            self.list, ctype, value, reason, message, generation=self.generation, now=self.now
        )

    def is_true(self, ctype: str) -> bool:
        cond = find_condition(self.list, ctype)
        return cond is not None and cond.get("status") == "True"


def _backtest(rows: Sequence[BacktestScore] | None) -> list[Obj]:
    return [row.model_dump(exclude_none=True) for row in rows or [] if row.model]


def _fold_success(
    status: Obj,
    conds: _Conditions,
    h: Harvest,
    spec: ForecastTaskSpec,
    model_versions: Mapping[str, str | None],
) -> None:
    result = h.result
    status["consecutiveFailures"] = 0
    if result is not None:
        if result.model:
            status["model"] = result.model
        scores = _backtest(result.backtest)
        if scores:
            status["backtest"] = scores
        uri = public_artifact_uri(spec, result.artifact_uri)
        if uri:
            status["artifactUri"] = uri
        if result.last_train_time:
            status["lastTrainTime"] = result.last_train_time
        recommendation = recommendation_status(result.recommendation)
        if recommendation is not None:
            status["recommendation"] = recommendation
        elif spec.recommendation is None:
            status.pop("recommendation", None)
        for key, value in (("bands", result.bands), ("alert", result.alert)):
            if value is not None:  # a predict-only run reports what its model was trained with
                status[key] = value
        if result.data_quality is not None:
            _fold_quality(status, conds, h.job, result.data_quality)
    if h.job in model_versions:
        # status.modelVersion follows the model in use; predict-only runs keep using the last one.
        mv = model_versions[h.job]
        if mv:
            status["modelVersion"] = mv
        else:
            status.pop("modelVersion", None)
    status["lastPredictTime"] = (result.last_predict_time if result else None) or format_time(h.finished)
    conds.set(ConditionType.READY, "True", h.reason, h.message)
    if conds.is_true(ConditionType.DEGRADED):
        conds.set(
            ConditionType.DEGRADED, "False", Reason.RECOVERED, f"run {h.job} succeeded after earlier failures"
        )


def _fold_shards(status: Obj, conds: _Conditions, h: Harvest) -> None:
    """``status.shards`` of a sharded run, and ``Degraded`` while some of its shards fail."""
    if h.shards is None:
        status.pop("shards", None)  # a single-pod run: nothing sharded to report any more
        status.pop("activeShards", None)
        return
    status["shards"] = h.shards
    if h.outcome is Outcome.SUCCEEDED and h.shards.get("failed"):
        conds.set(ConditionType.DEGRADED, "True", ForecastReason.SHARDS_FAILED, h.message)


def _fold_quality(status: Obj, conds: _Conditions, job: str, quality: DataQualityReport) -> None:
    """``dataQuality`` and the ``StaleData`` condition from what run ``job`` found in its input."""
    status["dataQuality"] = quality.status()
    if quality.stale_series:
        message = quality.stale_message or f"{quality.stale_series} series have stale source data"
        conds.set(ForecastConditionType.STALE_DATA, "True", ForecastReason.SOURCE_DATA_STALE, message)
    else:
        conds.set(
            ForecastConditionType.STALE_DATA, "False", ForecastReason.DATA_CURRENT,
            f"run {job} found current samples for all {quality.series} series",
        )  # fmt: skip


def _fold_failure(status: Obj, conds: _Conditions, h: Harvest, degraded_after: int) -> None:
    failures = int(status.get("consecutiveFailures") or 0) + 1
    status["consecutiveFailures"] = failures
    if h.outcome is Outcome.BLOCKED:
        conds.set(
            ConditionType.READY,
            "False",
            h.reason,
            f"{h.message} (fix the spec; no run starts until it changes)",
        )
    elif h.outcome is Outcome.RETRY and conds.is_true(ConditionType.READY):
        pass  # The last forecasts are still in Prometheus; Degraded says they are getting stale.
    else:
        conds.set(ConditionType.READY, "False", h.reason, h.message)
    if h.outcome is not Outcome.BLOCKED and failures >= degraded_after:
        conds.set(
            ConditionType.DEGRADED, "True", h.reason, f"{failures} failed runs in a row; last: {h.message}"
        )


def _fold_next(
    status: Obj, conds: _Conditions, active: tuple[str, RunKind] | None, plan: Plan, started_why: str | None
) -> None:
    """Phase, ``Progressing`` and ``activeRun``: the run under way, or why none is and when the next is."""
    if active is not None:
        job, kind = active
        status["activeRun"] = job
        status["phase"] = ForecastPhase.TRAINING if kind == "train" else ForecastPhase.PREDICTING
        why = f" ({started_why})" if started_why else ""
        conds.set(ConditionType.PROGRESSING, "True", Reason.RUNNING, f"{kind} run {job} is under way{why}")
        return
    status.pop("activeRun", None)
    if plan.waiting == "suspended":
        status["phase"] = ForecastPhase.SUSPENDED
        conds.set(
            ConditionType.PROGRESSING, "False", Reason.SUSPENDED,
            "spec.suspend is true: no run starts until it is false",
        )  # fmt: skip
    elif plan.waiting == "blocked":
        status["phase"] = ForecastPhase.FAILED
        conds.set(
            ConditionType.PROGRESSING, "False", ForecastReason.BLOCKED,
            "the last run failed on bad input: fix the spec",
        )  # fmt: skip
    else:
        status["phase"] = ForecastPhase.READY if status.get("lastPredictTime") else ForecastPhase.PENDING
        when = f"next run at {format_time(plan.next_time)}" if plan.next_time else "no run scheduled"
        if plan.waiting == "backoff":
            when = f"retrying after a temporary failure; {when}"
        conds.set(ConditionType.PROGRESSING, "False", ForecastReason.WAITING, when)


def task_status(
    current: Mapping[str, Any],
    *,
    spec: ForecastTaskSpec,
    generation: int | None,
    now: datetime,
    harvests: Sequence[Harvest],
    active: tuple[str, RunKind] | None,
    plan: Plan,
    degraded_after: int,
    started_why: str | None = None,
    model_versions: Mapping[str, str | None] | None = None,
    shards: Mapping[str, Any] | None = None,
) -> Obj:
    """The whole new status of a task (pure): ``current`` plus harvested runs, the active run and plan.

    ``model_versions`` maps each harvested run that trained to the ModelVersion of its model, or
    ``None`` when it registered none (only baselines chosen): ``status.modelVersion`` follows
    the model in use, and predict-only runs keep using the last one. ``shards`` is the progress of
    the sharded run under way (``status.activeShards``).
    """
    status: Obj = dict(current)
    conds = _Conditions(status.get("conditions"), generation, now)
    for h in harvests:
        status["runs"] = int(status.get("runs") or 0) + 1
        if h.result is not None and h.result.series_count is not None:
            status["seriesCount"] = h.result.series_count
        if h.outcome is Outcome.SUCCEEDED:
            _fold_success(status, conds, h, spec, model_versions or {})
        else:
            _fold_failure(status, conds, h, degraded_after)
        _fold_shards(status, conds, h)
    if shards is not None:
        status["activeShards"] = dict(shards)
    else:
        status.pop("activeShards", None)
    _fold_next(status, conds, active, plan, started_why)
    if find_condition(conds.list, ConditionType.READY) is None:
        conds.set(ConditionType.READY, "False", Reason.PENDING, "no run has finished yet")
    if plan.next_time is not None:
        status["nextRunTime"] = format_time(plan.next_time)
    else:
        status.pop("nextRunTime", None)
    status["observedGeneration"] = generation
    status["conditions"] = conds.list
    return status
