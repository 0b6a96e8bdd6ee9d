"""The ForecastTask controller: one reconcile, in named steps, under a per-task lock.

:meth:`ForecastTaskController.reconcile` runs, for one task:

1. :meth:`~ForecastTaskController._check` the spec (schedule, the output's size: :mod:`.sizing`)
   and the Secrets its runs read;
2. :meth:`~ForecastTaskController._ensure_config` the ConfigMap with the task YAML, in scrape
   mode the forecast server (:mod:`.forecast_server`), and the alerting rules and dashboard
   (:mod:`.monitoring`);
3. :meth:`~ForecastTaskController._advance` sharded runs: start the shards' Job of a plan that
   succeeded (:mod:`.shards`); from here on each run is one Job;
4. :meth:`~ForecastTaskController._harvest` finished runs (:mod:`.results`, :mod:`.shards`) and
   register the models training runs saved (:mod:`.trained_models`);
5. :meth:`~ForecastTaskController._schedule`: ask :func:`~foresight_operator.schedule.plan_runs`
   what to start, given the run Jobs as history (:mod:`.runs`), and start at most one Job (a
   sharded task's plan Job);
6. :meth:`~ForecastTaskController._report`: write status (:mod:`.status`) with a resourceVersion
   precondition, post events, update the gauges (:mod:`.gauges`); then prune old Jobs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from foresight.api.forecasttask import ForecastConditionType, ForecastReason, ForecastTaskSpec
from foresight.api.meta import ConditionType
from foresight.kube import CONFIGMAPS, JOBS

from ...builders.forecasttask import (
    ANNOTATION_SCHEDULED,
    KIND,
    ForecastRun,
    build_run_job,
    build_task_configmap,
    secret_refs,
)
from ...builders.forecasttask_shards import build_plan_job, stage_of
from ...reconcile import (
    FORECAST_TASKS,
    SpecError,
    find_condition,
    format_time,
    job_pods,
    job_state,
    parse_time,
    write_status,
)
from ...reconcile.jobs import JobState
from ...reconcile.locks import KeyedLocks
from ...reconcile.updates import configmap_update
from ...schedule import Backoff, Cadence, Outcome, Plan, RunKind, plan_runs
from ..children import make_child
from ..common import parse_spec, wait_for_secrets
from ..context import HandlerContext
from .deletion import delete_task_runs, drop_shard_groups
from .forecast_server import sync_scrape_children
from .gauges import ForecastTaskMetrics
from .monitoring import sync_monitoring_children
from .recommendation import recommendation_events
from .results import OUTCOME_ANNOTATION, Harvest, read_run_result
from .runs import prune_runs, run_history, run_jobs, run_kind
from .shards import read_plan_job, read_sharded_run, shards_progress, start_shards, visible_runs
from .sizing import newly_warned, output_verdict
from .status import task_status
from .trained_models import register_model_version
from .wakeups import Wakeups

__all__ = ["ForecastTaskController"]

Obj = dict[str, Any]


@dataclass
class _Pass:
    """What one reconcile of one task has learnt so far (passed from step to step)."""

    body: Obj
    spec: ForecastTaskSpec
    cadence: Cadence
    now: datetime
    all_jobs: list[Obj]
    """Every run Job (a sharded run has two)."""
    harvests: list[Harvest]
    model_versions: dict[str, str | None]
    plan: Plan | None = None
    active: tuple[str, RunKind] | None = None
    started_why: str | None = None
    jobs: list[Obj] = field(default_factory=list)
    """One Job per run (:func:`.shards.visible_runs`): the run history."""

    @property
    def namespace(self) -> str:
        return str(self.body["metadata"]["namespace"])

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def generation(self) -> int | None:
        return self.body["metadata"].get("generation")


class ForecastTaskController:
    """Reconciles ForecastTasks; one instance per operator process (holds the per-task locks)."""

    def __init__(
        self,
        ctx: HandlerContext,
        metrics: ForecastTaskMetrics,
        *,
        backoff: Backoff | None = None,
        late_after: timedelta = timedelta(minutes=1),
    ) -> None:
        self.ctx = ctx
        self.metrics = metrics
        self.backoff = backoff or Backoff(
            base=timedelta(seconds=max(1.0, ctx.settings.retry_delay)), cap=timedelta(minutes=10)
        )
        self.late_after = late_after
        self.wakeups: Wakeups | None = None
        """Told when each task is next due (:mod:`.wakeups`); ``None``: nobody wakes tasks (tests)."""
        self.min_wait = timedelta(seconds=5)
        """The shortest wait before a task whose next run is already due is looked at again."""
        self.active_recheck = timedelta(minutes=10)
        """With a run under way, look again after this at the latest: its Job's events (finished,
        deleted) do it sooner, so this only bounds what lost events can delay. Each look is ~7 API
        calls: at 1 minute, 1,000 tasks with runs under way made an idle operator send 7,000 a minute."""
        self._locks = KeyedLocks()

    def forget(self, namespace: str, name: str) -> None:
        self._locks.forget(namespace, name)
        if self.wakeups is not None:
            self.wakeups.forget(namespace, name)
        self.metrics.record(namespace, name, None, 0)
        self.ctx.metrics.record_status(KIND, namespace, name, None)

    # -- the reconcile --

    def reconcile(self, body: Mapping[str, Any]) -> None:
        """Bring one task up to date: harvest, schedule, start at most one run, write status."""
        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        with self._locks.lock(namespace, name):
            current = self.ctx.kube.get(FORECAST_TASKS, name, namespace)
            if current is None or (current.get("metadata") or {}).get("deletionTimestamp"):
                return
            run = self._check(current)
            self._ensure_config(run)
            self._advance(run)
            self._harvest(run)
            self._schedule(run)
            if self._report(run):
                prune_runs(self.ctx.kube, namespace, run.all_jobs)

    def _check(self, body: Obj) -> _Pass:
        """The spec as the API model, its schedule, and the Secrets its runs read (raises Spec/WaitError)."""
        spec = parse_spec(ForecastTaskSpec, body.get("spec"))
        try:
            cadence = Cadence.from_spec(spec)
        except ValueError as exc:
            raise SpecError(str(exc), reason=ForecastReason.INVALID_SCHEDULE, field="schedule") from exc
        verdict = output_verdict(spec, body.get("status") or {})
        if verdict.level == "refuse":
            raise SpecError(verdict.message, reason=ForecastReason.OUTPUT_TOO_LARGE, field="output.mode")
        namespace = body["metadata"]["namespace"]
        wait_for_secrets(self.ctx, namespace, secret_refs(spec), waiting="runs start")
        jobs = run_jobs(self.ctx.kube, namespace, body["metadata"]["name"])
        return _Pass(body, spec, cadence, self.ctx.clock(), jobs, [], {}, jobs=visible_runs(jobs))

    def _ensure_config(self, run: _Pass) -> None:
        """The ConfigMap with the task YAML the runs read, the scrape-mode forecast server, and the
        task's alerting rules and dashboard."""
        cm = build_task_configmap(run.name, run.namespace, run.spec)
        make_child(self.ctx, run.body, CONFIGMAPS, cm, update=configmap_update)
        sync_scrape_children(self.ctx, run.body, run.spec)
        sync_monitoring_children(self.ctx, run.body, run.spec)

    def _advance(self, run: _Pass) -> None:
        """Sharded runs: start the shards' Job of every plan that succeeded; then one Job per run."""
        start_shards(self.ctx, run.body, run.spec, run.all_jobs, run_kind)
        run.jobs = visible_runs(run.all_jobs)

    def _harvest(self, run: _Pass) -> None:
        """Read the finished runs status has not taken in yet; register the models they trained."""
        active_name = (run.body.get("status") or {}).get("activeRun")
        for job in sorted(run.jobs, key=lambda j: j["metadata"]["annotations"][ANNOTATION_SCHEDULED]):
            jmeta = job["metadata"]
            if job_state(job) is JobState.RUNNING:
                continue
            unread = OUTCOME_ANNOTATION not in (jmeta.get("annotations") or {})
            if jmeta["name"] != active_name and not unread:
                continue
            pods = job_pods(self.ctx.kube, run.namespace, jmeta["name"])
            stage = stage_of(job)
            if stage == "shards":
                h = read_sharded_run(job, pods, kind=run_kind(job), now=run.now)
            else:
                h = read_run_result(job, pods, kind=run_kind(job), now=run.now)
                h = read_plan_job(h) if stage == "plan" else h
            if unread:
                # Marked first: a crash before the status write leaves activeRun set, so the run is
                # read again; the status write never counts a run twice.
                mark = {"metadata": {"annotations": {OUTCOME_ANNOTATION: h.outcome.value}}}
                self.ctx.kube.patch(JOBS, jmeta["name"], run.namespace, mark)
            run.harvests.append(h)
        was_sharded = bool((run.body.get("status") or {}).get("shards"))
        single_ok = any(h.outcome is Outcome.SUCCEEDED and h.shards is None for h in run.harvests)
        if was_sharded and single_ok and run.spec.output.mode == "pushgateway":
            drop_shard_groups(self.ctx, run.body, run.spec)
        # Before the status write: a crash in between reads the run again (activeRun is still set)
        # and finds the ModelVersion made here by its deterministic name.
        run.model_versions = {
            h.job: register_model_version(self.ctx, run.body, run.spec, h) for h in run.harvests if h.trained
        }

    def _plan(self, run: _Pass, failures_in_a_row: int = 0) -> Plan:
        history = run_history(run.jobs, {h.job: h for h in run.harvests}, run.body.get("status") or {})
        return plan_runs(
            run.cadence,
            history,
            generation=run.generation,
            now=run.now,
            failures_in_a_row=failures_in_a_row,
            backoff=self.backoff,
            late_after=self.late_after,
        )

    def _schedule(self, run: _Pass) -> None:
        """Plan from the run history and start at most one run (none while one is under way)."""
        status = run.body.get("status") or {}
        failed = sum(1 for h in run.harvests if h.outcome is not Outcome.SUCCEEDED)
        plan = self._plan(run, int(status.get("consecutiveFailures") or 0) + failed)
        running = [j for j in run.jobs if job_state(j) is JobState.RUNNING]
        run.active = (running[0]["metadata"]["name"], run_kind(running[0])) if running else None
        run.plan = plan
        if plan.start is None or run.active is not None:
            return
        start = ForecastRun(plan.start.kind, plan.start.scheduled, plan.start.attempt, run.generation)
        build = build_plan_job if run.spec.parallelism > 1 else build_run_job
        job = build(
            run.spec,
            name=run.name,
            namespace=run.namespace,
            run=start,
            default_image=self.ctx.settings.runtime_image,
        )
        when = format_time(start.scheduled)
        announce = (
            f"Job {job['metadata']['name']} runs the {start.kind} run scheduled for {when} "
            f"({plan.start.why}, attempt {start.attempt})"
        )
        made, _ = make_child(self.ctx, run.body, JOBS, job, announce=announce, reason="RunStarted")
        run.active, run.started_why = (made["metadata"]["name"], start.kind), plan.start.why
        if all(j["metadata"]["name"] != made["metadata"]["name"] for j in run.jobs):
            run.jobs.append(made)
            run.all_jobs.append(made)
        # The next run is planned as if this one had already started.
        run.plan = Plan(None, self._plan(run).next_time, max(0, plan.queued - 1), "active")

    def _report(self, run: _Pass) -> bool:
        """Write the status, post what changed as events, update the gauges; ``False`` when the
        task is gone."""
        assert run.plan is not None
        plan = run.plan
        progress = self._shards_progress(run)

        def compute(current: Obj) -> Obj:
            return task_status(
                current.get("status") or {},
                spec=run.spec,
                generation=run.generation,
                now=run.now,
                harvests=run.harvests,
                active=run.active,
                plan=plan,
                degraded_after=self.ctx.settings.degraded_after,
                started_why=run.started_why,
                model_versions=run.model_versions,
                shards=progress,
            )

        result = write_status(
            self.ctx.kube, FORECAST_TASKS, run.namespace, run.name, compute, current=run.body
        )
        if result is None:
            return False
        for h in run.harvests:
            partial = h.shards is not None and bool(h.shards.get("failed"))
            type_ = "Normal" if h.outcome is Outcome.SUCCEEDED and not partial else "Warning"
            self.ctx.post_event(result.body, type_, h.reason, f"run {h.job}: {h.message}")
        warning = newly_warned(run.spec, result.old, result.new)
        if warning:
            self.ctx.post_event(result.body, "Warning", "OutputLarge", warning)
        for type_, reason, message in recommendation_events(
            result.old.get("recommendation"), result.new.get("recommendation")
        ):
            self.ctx.post_event(result.body, type_, reason, message)
        for ctype in (ConditionType.DEGRADED, ForecastConditionType.STALE_DATA):
            now = find_condition(result.new.get("conditions"), ctype) or {}
            was = find_condition(result.old.get("conditions"), ctype) or {}
            if now.get("status") == "True" and was.get("status") != "True":
                self.ctx.post_event(result.body, "Warning", str(ctype), str(now.get("message")))
        self.ctx.metrics.record_status(KIND, run.namespace, run.name, result.new)
        self.metrics.record(run.namespace, run.name, result.new, plan.queued)
        if self.wakeups is not None:
            self.wakeups.at(run.namespace, run.name, self.next_wake(run.now, result.new))
        return True

    def next_wake(self, now: datetime, status: Mapping[str, Any]) -> datetime | None:
        """When the task needs a reconcile that no event will trigger: its next run (not sooner than
        ``min_wait``: one already due waits out its backoff); with a run under way, whose end is an
        event, ``active_recheck`` (a safety net for events lost); ``None`` when nothing is scheduled."""
        if status.get("activeRun"):
            return now + self.active_recheck
        nxt = parse_time(status.get("nextRunTime"))
        return None if nxt is None else max(nxt, now + self.min_wait)

    def _shards_progress(self, run: _Pass) -> Obj | None:
        """``status.activeShards`` of the sharded run under way: its plan, or its shards' progress."""
        if run.active is None:
            return None
        job = next((j for j in run.jobs if j["metadata"]["name"] == run.active[0]), None)
        stage = stage_of(job) if job is not None else None
        if stage == "plan":
            return {"planId": run.active[0], "total": run.spec.parallelism, "progress": "planning"}
        if job is not None and stage == "shards":
            return shards_progress(job, job_pods(self.ctx.kube, run.namespace, run.active[0]))
        return None

    # -- the pieces tests and other handlers call on their own --

    def ensure_model_version(self, body: Mapping[str, Any], spec: ForecastTaskSpec, h: Harvest) -> str | None:
        """Make the ModelVersion of the model a training run saved; its name, or ``None`` if none."""
        return register_model_version(self.ctx, body, spec, h)

    def on_delete(self, body: Mapping[str, Any], retry: int) -> None:
        """Stop the task's runs and delete its Pushgateway group (:mod:`.deletion`), then forget it."""
        delete_task_runs(self.ctx, body, retry)
        meta = body["metadata"]
        self.forget(meta["namespace"], meta["name"])
