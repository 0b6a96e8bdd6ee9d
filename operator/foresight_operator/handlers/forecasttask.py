"""ForecastTask: scheduled runs, one Job at a time, status from the runs' termination messages.

Handlers (thin): create / resume / spec update, every ``tick`` seconds (a kopf timer that makes
no API call unless a run is under way or due) and every change of a run Job all call
:meth:`ForecastTaskController.reconcile`, which, under a per-task lock:

1. checks the spec and the Secrets it names, and keeps the ConfigMap with the task YAML current;
2. *harvests* finished runs: reads the result the pod left in its termination message (the
   runtime's JSON: phase, seriesCount, model, backtest, artifactUri, last train / predict
   times, or reason + message), marks the Job with its outcome, and folds it into status; a
   training run that saved a trained network gets a ModelVersion of that artifact
   (:mod:`~foresight_operator.builders.modelversion_from_forecast`), named in
   ``status.modelVersion``;
3. asks :func:`~foresight_operator.schedule.plan_runs` what to start, given the task's Jobs as
   its run history, and starts at most one Job (deterministic name from the scheduled time);
4. writes status (phase, conditions, nextRunTime, activeRun...) with a resourceVersion
   precondition, posts events, prunes old Jobs and updates the ``/metrics`` gauges.

Failures of a run: bad input (PromQL syntax error with Prometheus' message, no series, too
little history, too many series) gives ``Ready=False`` with that reason and blocks the task
until its spec changes; a temporary one (Prometheus or Pushgateway unreachable) is retried with
an exponential backoff and turns ``Degraded`` True after ``degraded_after`` failures in a row,
back to False with the next success. Deleting a task stops its runs and, in pushgateway mode,
deletes its Pushgateway group (a finalizer holds the deletion until then).

With ``output.mode: scrape`` step 1 also keeps the task's forecast server, a Deployment and a
Service (:func:`~foresight_operator.builders.forecasttask.build_scrape_children`), owned by the
task so they go with it; when the mode changes away from scrape, they are deleted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from foresight.api.forecasttask import FORECAST_TASK, ForecastReason, ForecastTaskSpec
from foresight.api.meta import GROUP, VERSION
from foresight.api.modelversion import MODEL_VERSION
from prometheus_client import Gauge

from ..builders.forecasttask import (
    ANNOTATION_SCHEDULED,
    KIND,
    SPEC_HASH_ANNOTATION,
    ForecastRun,
    build_run_job,
    build_scrape_children,
    build_task_configmap,
    forecasts_name,
    format_scheduled,
    parse_annotations,
    public_artifact_uri,
    secrets_needed,
)
from ..builders.modelversion_from_forecast import build_forecast_model_version
from ..kube import CONFIGMAPS, DEPLOYMENTS, JOBS, PODS, SECRETS, SERVICES, KubeApiError, ResourceRef
from ..reconcile import (
    KIND_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    SpecError,
    WaitError,
    ensure_child,
    merge_diff,
    owned_by,
    owner_selector,
    set_condition,
    write_status,
)
from ..schedule import Backoff, Cadence, Outcome, PastRun, Plan, RunKind, plan_runs
from .common import guarded, kind_ref, parse_spec
from .context import HandlerContext

__all__ = [
    "BAD_INPUT_REASONS",
    "FORECAST_TASKS",
    "ForecastTaskController",
    "ForecastTaskMetrics",
    "Harvest",
    "read_run_result",
    "register_forecasttask",
    "task_status",
]

log = logging.getLogger(__name__)
Obj = dict[str, Any]
FORECAST_TASKS = kind_ref(KIND, FORECAST_TASK.plural)
MODEL_VERSIONS = kind_ref(MODEL_VERSION.kind, MODEL_VERSION.plural)
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
OUTCOME_ANNOTATION = "foresight.dev/outcome"
BAD_INPUT_REASONS = frozenset(
    {
        ForecastReason.PROMQL_ERROR.value,
        ForecastReason.NO_SERIES.value,
        ForecastReason.INSUFFICIENT_HISTORY.value,
        ForecastReason.TOO_MANY_SERIES.value,
        "InvalidSpec",
        "UnsupportedKind",
    }
)
"""Run failures that no retry can fix: the task waits for a spec change."""
EXIT_BAD_INPUT = 2
EXIT_TEMPORARY = 3  # the exit codes of `foresight run`
HISTORY_LIMIT = 3
"""Finished run Jobs kept per run kind (the newest of each kind is the scheduler's memory)."""


def _parse_time(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        try:
            return datetime.fromisoformat(str(text).replace("Z", "+00:00")).astimezone(UTC)
        except ValueError:
            return None


def _fmt(t: datetime) -> str:
    return format_scheduled(t)


# ---- reading runs back -------------------------------------------------------------------------


def job_state(job: Mapping[str, Any]) -> str:
    """``Running``, ``Succeeded`` or ``Failed`` from a Job's conditions."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "Failed"):
            return "Succeeded" if cond["type"] == "Complete" else "Failed"
    return "Running"


@dataclass(frozen=True)
class Harvest:
    """The result of one finished run, read from its Job and pod."""

    job: str
    kind: RunKind
    scheduled: datetime
    attempt: int
    outcome: Outcome
    reason: str
    message: str
    finished: datetime
    doc: Obj = field(default_factory=dict)
    """The runtime's termination message (empty when the pod left none)."""


def _terminated(pod: Mapping[str, Any]) -> Obj | None:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        term = (cs.get("state") or {}).get("terminated")
        if term:
            return dict(term)
    return None


def read_run_result(
    job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]], *, kind: RunKind, now: datetime
) -> Harvest:
    """How a finished run Job ended (pure): outcome, reason and message, and the runtime's result."""
    meta = job.get("metadata") or {}
    parsed = parse_annotations(meta.get("annotations") or {})
    scheduled, attempt = (parsed[0], parsed[1]) if parsed else (now, 1)
    ended = [(t, p) for p in pods if (t := _terminated(p))]
    ended.sort(key=lambda tp: str(tp[0].get("finishedAt") or ""))
    term: Obj = ended[-1][0] if ended else {}
    raw = str(term.get("message") or "")
    doc: Obj = {}
    if raw.strip().startswith("{"):
        try:
            loaded = json.loads(raw)
            doc = loaded if isinstance(loaded, dict) else {}
        except ValueError:
            doc = {}
    jstatus = job.get("status") or {}
    finished = _parse_time(term.get("finishedAt")) or _parse_time(jstatus.get("completionTime")) or now
    name = str(meta.get("name"))
    if job_state(job) == "Succeeded":
        message = str(doc.get("message") or f"run {name} finished")
        return Harvest(name, kind, scheduled, attempt, Outcome.SUCCEEDED, str(doc.get("reason") or
                       ForecastReason.FORECASTS_WRITTEN.value), message, finished, doc)  # fmt: skip
    exit_code = term.get("exitCode")
    if doc.get("reason"):
        reason, message = str(doc["reason"]), str(doc.get("message") or "")
    else:
        failed: Obj = next((c for c in jstatus.get("conditions") or [] if c.get("type") == "Failed"), {})
        reason = ForecastReason.RUN_FAILED.value
        message = f"run {name} failed ({failed.get('reason') or 'no result'}: {failed.get('message') or ''})"
        if raw:
            message += f"; the pod's last words: {raw[-1500:]}"
        elif term.get("reason"):
            message += f"; container {term.get('reason')} (exit code {exit_code})"
    if reason in BAD_INPUT_REASONS or (exit_code == EXIT_BAD_INPUT and not doc.get("retryable")):
        outcome = Outcome.BLOCKED
    elif doc.get("retryable") or exit_code == EXIT_TEMPORARY:
        outcome = Outcome.RETRY
    else:
        outcome = Outcome.FAILED
    return Harvest(name, kind, scheduled, attempt, outcome, reason, message, finished, doc)


# ---- status (pure) -----------------------------------------------------------------------------


def _backtest(rows: Any) -> list[Obj]:
    out = []
    for row in rows or []:
        if isinstance(row, dict) and row.get("model"):
            out.append({k: row[k] for k in ("model", "mase", "mae") if row.get(k) is not None})
    return out


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
) -> Obj:
    """The whole new status of a task (pure): ``current`` plus harvested runs, the active run and plan.

    ``model_versions`` maps each harvested run that trained to the ModelVersion of its model, or
    ``None`` when it registered none (only baselines chosen): ``status.modelVersion`` follows
    the model in use, and predict-only runs keep using the last one.
    """
    status: Obj = dict(current)
    conds: list[Obj] = list(status.get("conditions") or [])

    def cond(ctype: str, value: str, reason: str, message: str) -> None:
        nonlocal conds
        conds = set_condition(conds, ctype, value, reason, message, generation=generation, now=now)

    for h in harvests:
        status["runs"] = int(status.get("runs") or 0) + 1
        doc = h.doc
        if doc.get("seriesCount") is not None:
            status["seriesCount"] = int(doc["seriesCount"])
        if h.outcome is Outcome.SUCCEEDED:
            status["consecutiveFailures"] = 0
            if doc.get("model"):
                status["model"] = str(doc["model"])
            scores = _backtest(doc.get("backtest"))
            if scores:
                status["backtest"] = scores
            uri = public_artifact_uri(spec, doc.get("artifactUri"))
            if uri:
                status["artifactUri"] = uri
            if doc.get("lastTrainTime"):
                status["lastTrainTime"] = str(doc["lastTrainTime"])
            if model_versions and h.job in model_versions:
                mv = model_versions[h.job]
                if mv:
                    status["modelVersion"] = mv
                else:
                    status.pop("modelVersion", None)
            status["lastPredictTime"] = str(doc.get("lastPredictTime") or _fmt(h.finished))
            cond("Ready", "True", h.reason, h.message)
            if any(c.get("type") == "Degraded" and c.get("status") == "True" for c in conds):
                cond("Degraded", "False", "Recovered", f"run {h.job} succeeded after earlier failures")
            continue
        failures = int(status.get("consecutiveFailures") or 0) + 1
        status["consecutiveFailures"] = failures
        ready = next((c for c in conds if c.get("type") == "Ready"), None)
        if h.outcome is Outcome.BLOCKED:
            cond("Ready", "False", h.reason, f"{h.message} (fix the spec; no run starts until it changes)")
        elif h.outcome is Outcome.RETRY and ready is not None and ready.get("status") == "True":
            # The last forecasts are still in Prometheus; Degraded says they are getting stale.
            pass
        else:
            cond("Ready", "False", h.reason, h.message)
        if h.outcome is not Outcome.BLOCKED and failures >= degraded_after:
            cond("Degraded", "True", h.reason, f"{failures} failed runs in a row; last: {h.message}")

    if active is not None:
        job, kind = active
        status["activeRun"] = job
        status["phase"] = "Training" if kind == "train" else "Predicting"
        why = f" ({started_why})" if started_why else ""
        cond("Progressing", "True", "Running", f"{kind} run {job} is under way{why}")
    else:
        status.pop("activeRun", None)
        if plan.waiting == "suspended":
            status["phase"] = "Suspended"
            cond("Progressing", "False", "Suspended", "spec.suspend is true: no run starts until it is false")
        elif plan.waiting == "blocked":
            status["phase"] = "Failed"
            cond("Progressing", "False", "Blocked", "the last run failed on bad input: fix the spec")
        else:
            status["phase"] = "Ready" if status.get("lastPredictTime") else "Pending"
            when = f"next run at {_fmt(plan.next_time)}" if plan.next_time else "no run scheduled"
            if plan.waiting == "backoff":
                when = f"retrying after a temporary failure; {when}"
            cond("Progressing", "False", "Waiting", when)
    if not any(c.get("type") == "Ready" for c in conds):
        cond("Ready", "False", "Pending", "no run has finished yet")
    if plan.next_time is not None:
        status["nextRunTime"] = _fmt(plan.next_time)
    else:
        status.pop("nextRunTime", None)
    status["observedGeneration"] = generation
    status["conditions"] = conds
    return status


# ---- metrics -----------------------------------------------------------------------------------


class ForecastTaskMetrics:
    """The scheduled-runs queue, run state and last results per task, in the operator's registry.

    Every series of a task is removed when the task is deleted (``record(..., None, 0)``); a
    model that leaves ``status.backtest`` loses its backtest series.
    """

    def __init__(self, registry: Any) -> None:
        labels = ["namespace", "name"]
        self.queued = Gauge(
            "foresight_forecasttask_runs_queued",
            "Runs of a ForecastTask that are due and not started yet (the scheduled-runs queue).",
            labels,
            registry=registry,
        )
        self.next_run = Gauge(
            "foresight_forecasttask_next_run_timestamp_seconds",
            "When the next run of a ForecastTask is due (Unix seconds; absent when none is scheduled).",
            labels,
            registry=registry,
        )
        self.active = Gauge(
            "foresight_forecasttask_run_active",
            "1 while a run of the ForecastTask is under way, by run kind (train, predict).",
            [*labels, "kind"],
            registry=registry,
        )
        self.failures = Gauge(
            "foresight_forecasttask_consecutive_failures",
            "Failed runs of a ForecastTask since its last success.",
            labels,
            registry=registry,
        )
        self.series = Gauge(
            "foresight_forecasttask_series",
            "Series forecast by the last run of a ForecastTask.",
            labels,
            registry=registry,
        )
        self.last_predict = Gauge(
            "foresight_forecasttask_last_predict_timestamp_seconds",
            "End of the last successful prediction of a ForecastTask (Unix seconds).",
            labels,
            registry=registry,
        )
        self.last_train = Gauge(
            "foresight_forecasttask_last_train_timestamp_seconds",
            "End of the last successful training run of a ForecastTask (Unix seconds).",
            labels,
            registry=registry,
        )
        self.backtest = Gauge(
            "foresight_forecasttask_backtest_error",
            "Backtest error of each model of a ForecastTask's last training run (status.backtest), by "
            "metric: mase (mean absolute scaled error, season 1 day) and mae (mean absolute error).",
            [*labels, "model", "metric"],
            registry=registry,
        )
        self._backtest_keys: dict[tuple[str, str], set[tuple[str, str]]] = {}
        self._lock = threading.Lock()

    def _record_backtest(self, namespace: str, name: str, rows: Any) -> None:
        want: dict[tuple[str, str], float] = {}
        for row in rows if isinstance(rows, list) else []:
            if not isinstance(row, Mapping) or not row.get("model"):
                continue
            for metric in ("mase", "mae"):
                value = row.get(metric)
                if isinstance(value, int | float) and math.isfinite(value):
                    want[(str(row["model"]), metric)] = float(value)
        for model, metric in self._backtest_keys.get((namespace, name), set()) - want.keys():
            with contextlib.suppress(KeyError):
                self.backtest.remove(namespace, name, model, metric)
        for (model, metric), value in want.items():
            self.backtest.labels(namespace, name, model, metric).set(value)
        if want:
            self._backtest_keys[(namespace, name)] = set(want)
        else:
            self._backtest_keys.pop((namespace, name), None)

    def record(self, namespace: str, name: str, status: Mapping[str, Any] | None, queued: int) -> None:
        with self._lock:
            if status is None:
                gauges = (self.queued, self.next_run, self.failures, self.series, self.last_predict,
                          self.last_train)  # fmt: skip
                for gauge in gauges:
                    with contextlib.suppress(KeyError):  # never recorded
                        gauge.remove(namespace, name)
                for kind in ("train", "predict"):
                    with contextlib.suppress(KeyError):
                        self.active.remove(namespace, name, kind)
                self._record_backtest(namespace, name, [])
                return
            self.queued.labels(namespace, name).set(queued)
            nxt = _parse_time(status.get("nextRunTime"))
            if nxt is not None:
                self.next_run.labels(namespace, name).set(nxt.timestamp())
            else:
                with contextlib.suppress(KeyError):
                    self.next_run.remove(namespace, name)
            phase = status.get("phase")
            self.active.labels(namespace, name, "train").set(1 if phase == "Training" else 0)
            self.active.labels(namespace, name, "predict").set(1 if phase == "Predicting" else 0)
            self.failures.labels(namespace, name).set(int(status.get("consecutiveFailures") or 0))
            if status.get("seriesCount") is not None:
                self.series.labels(namespace, name).set(int(status["seriesCount"]))
            last = _parse_time(status.get("lastPredictTime"))
            if last is not None:
                self.last_predict.labels(namespace, name).set(last.timestamp())
            trained = _parse_time(status.get("lastTrainTime"))
            if trained is not None:
                self.last_train.labels(namespace, name).set(trained.timestamp())
            self._record_backtest(namespace, name, status.get("backtest"))


# ---- the controller ----------------------------------------------------------------------------


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
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, namespace: str, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault((namespace, name), threading.Lock())

    def forget(self, namespace: str, name: str) -> None:
        with self._guard:
            self._locks.pop((namespace, name), None)
        self.metrics.record(namespace, name, None, 0)
        self.ctx.metrics.record_status(KIND, namespace, name, None)

    # -- reading --

    def _jobs(self, namespace: str, name: str) -> list[Obj]:
        jobs = self.ctx.kube.list(JOBS, namespace, label_selector=owner_selector(KIND, name))
        return [j for j in jobs if parse_annotations((j.get("metadata") or {}).get("annotations") or {})]

    def _pods(self, namespace: str, job: str) -> list[Obj]:
        return self.ctx.kube.list(PODS, namespace, label_selector=f"{JOB_NAME_LABEL}={job}")

    @staticmethod
    def _kind(job: Mapping[str, Any]) -> RunKind:
        kind = ((job.get("metadata") or {}).get("labels") or {}).get("foresight.dev/run-kind")
        return "train" if kind == "train" else "predict"

    def _history(
        self, jobs: Sequence[Obj], harvested: Mapping[str, Harvest], status: Mapping[str, Any]
    ) -> list[PastRun]:
        runs: list[PastRun] = []
        for job in jobs:
            meta = job["metadata"]
            parsed = parse_annotations(meta.get("annotations") or {})
            assert parsed is not None
            scheduled, attempt, generation = parsed
            h = harvested.get(meta["name"])
            if job_state(job) == "Running":
                outcome, finished = Outcome.RUNNING, None
            elif h is not None:
                outcome, finished = h.outcome, h.finished
            else:
                raw = str((meta.get("annotations") or {}).get(OUTCOME_ANNOTATION))
                outcome = Outcome(raw) if raw in {o.value for o in Outcome} else Outcome.FAILED
                finished = _parse_time((job.get("status") or {}).get("completionTime")) or scheduled
            runs.append(PastRun(self._kind(job), scheduled, attempt, generation, outcome, finished))
        if not runs:
            # The Jobs were deleted by hand: the status still says when the task last ran.
            gen = status.get("observedGeneration")
            for kind, key in (("train", "lastTrainTime"), ("predict", "lastPredictTime")):
                t = _parse_time(status.get(key))
                if t is not None:
                    runs.append(PastRun(kind, t, 1, gen, Outcome.SUCCEEDED, t))  # type: ignore[arg-type]
        return runs

    # -- the reconcile --

    def reconcile(self, body: Mapping[str, Any]) -> None:
        """Bring one task up to date: harvest, schedule, start at most one run, write status."""
        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        with self._lock(namespace, name):
            self._reconcile(namespace, name)

    def _reconcile(self, namespace: str, name: str) -> None:
        import kopf

        ctx = self.ctx
        body: Any = ctx.kube.get(FORECAST_TASKS, name, namespace)
        if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
            return
        meta = body["metadata"]
        generation = meta.get("generation")
        spec = parse_spec(ForecastTaskSpec, body.get("spec"))
        try:
            cadence = Cadence.from_spec(spec)
        except ValueError as exc:
            raise SpecError(str(exc), reason="InvalidSchedule", field="schedule") from exc
        for secret in secrets_needed(spec):
            if ctx.kube.get(SECRETS, secret, namespace) is None:
                raise WaitError(
                    f"Secret {namespace}/{secret} not found: create it (see spec.source.bearerTokenSecret "
                    "and spec.artifacts.credentialsSecret); runs start once it exists",
                    reason="SecretNotFound",
                    delay=max(ctx.settings.retry_delay, 5.0),
                )
        now = ctx.clock()
        uid = meta["uid"]

        cm = build_task_configmap(name, namespace, spec)
        kopf.adopt(cm, owner=body)

        def cm_update(desired: Obj, existing: Obj) -> Obj | None:
            return {"data": desired["data"]} if existing.get("data") != desired["data"] else None

        _, created = ensure_child(ctx.kube, CONFIGMAPS, cm, owner_uid=uid, update=cm_update)
        if created:
            ctx.metrics.children.labels(kind=KIND, child="ConfigMap").inc()
        self.sync_scrape_children(body, spec)

        # 1. Harvest finished runs that status has not taken in yet.
        status = dict(body.get("status") or {})
        jobs = self._jobs(namespace, name)
        active_name = status.get("activeRun")
        harvests: list[Harvest] = []
        for job in sorted(jobs, key=lambda j: j["metadata"]["annotations"][ANNOTATION_SCHEDULED]):
            jmeta = job["metadata"]
            if job_state(job) == "Running":
                continue
            unread = OUTCOME_ANNOTATION not in (jmeta.get("annotations") or {})
            if jmeta["name"] != active_name and not unread:
                continue
            h = read_run_result(job, self._pods(namespace, jmeta["name"]), kind=self._kind(job), now=now)
            if unread:
                # Marked first: a crash before the status write leaves activeRun set, so the run is
                # read again; the status write below never counts a run twice.
                mark = {"metadata": {"annotations": {OUTCOME_ANNOTATION: h.outcome.value}}}
                ctx.kube.patch(JOBS, jmeta["name"], namespace, mark)
            harvests.append(h)
        by_name = {h.job: h for h in harvests}
        # Before the status write: a crash in between reads the run again (activeRun is still set)
        # and finds the ModelVersion made here by its deterministic name.
        model_versions = {
            h.job: self.ensure_model_version(body, spec, h)
            for h in harvests
            if h.outcome is Outcome.SUCCEEDED and h.doc.get("mode") == "train"
        }

        # 2. Plan.
        history = self._history(jobs, by_name, status)
        plan = plan_runs(
            cadence,
            history,
            generation=generation,
            now=now,
            failures_in_a_row=int(status.get("consecutiveFailures") or 0)
            + sum(1 for h in harvests if h.outcome is not Outcome.SUCCEEDED),
            backoff=self.backoff,
            late_after=self.late_after,
        )
        running = [j for j in jobs if job_state(j) == "Running"]
        active: tuple[str, RunKind] | None = (
            (running[0]["metadata"]["name"], self._kind(running[0])) if running else None
        )
        started_why: str | None = None

        # 3. Start at most one run.
        if plan.start is not None and active is None:
            run = ForecastRun(plan.start.kind, plan.start.scheduled, plan.start.attempt, generation)
            job = build_run_job(
                spec, name=name, namespace=namespace, run=run, default_image=ctx.settings.runtime_image
            )
            kopf.adopt(job, owner=body)
            made, created = ensure_child(ctx.kube, JOBS, job, owner_uid=uid)
            jname = made["metadata"]["name"]
            active, started_why = (jname, run.kind), plan.start.why
            if created:
                ctx.metrics.children.labels(kind=KIND, child="Job").inc()
                ctx.post_event(
                    body, "Normal", "RunStarted",
                    f"Job {jname} runs the {run.kind} run scheduled for {_fmt(run.scheduled)} "
                    f"({plan.start.why}, attempt {run.attempt})",
                )  # fmt: skip
            history.append(PastRun(run.kind, run.scheduled, run.attempt, generation, Outcome.RUNNING))
            plan = Plan(
                None,
                plan_runs(
                    cadence, history, generation=generation, now=now, late_after=self.late_after
                ).next_time,
                max(0, plan.queued - 1),
                "active",
            )

        # 4. Status.
        def compute(current: Obj) -> Obj:
            return task_status(
                current.get("status") or {},
                spec=spec,
                generation=generation,
                now=now,
                harvests=harvests,
                active=active,
                plan=plan,
                degraded_after=ctx.settings.degraded_after,
                started_why=started_why,
                model_versions=model_versions,
            )

        result = write_status(ctx.kube, FORECAST_TASKS, namespace, name, compute)
        if result is None:
            return
        new = result.new
        for h in harvests:
            if h.outcome is Outcome.SUCCEEDED:
                ctx.post_event(result.body, "Normal", h.reason, f"run {h.job}: {h.message}")
            else:
                ctx.post_event(result.body, "Warning", h.reason, f"run {h.job}: {h.message}")
        old_degraded = _cond_status(result.old, "Degraded")
        new_degraded = _cond_status(new, "Degraded")
        if new_degraded == "True" and old_degraded != "True":
            c = next(c for c in new["conditions"] if c["type"] == "Degraded")
            ctx.post_event(result.body, "Warning", "Degraded", str(c.get("message")))
        ctx.metrics.record_status(KIND, namespace, name, new)
        self.metrics.record(namespace, name, new, plan.queued)

        # 5. Keep the newest few finished Jobs of each kind (the newest is the scheduler's memory).
        self._prune(namespace, jobs)

    def sync_scrape_children(self, body: Any, spec: ForecastTaskSpec) -> None:
        """Scrape mode: make the forecast server's Deployment and Service exist, owned and current.

        Other modes: delete them if this task owns them (its mode was scrape before).
        """
        import kopf

        ctx = self.ctx
        meta = body["metadata"]
        namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
        if spec.output.mode != "scrape":
            own = forecasts_name(name)
            for ref in (SERVICES, DEPLOYMENTS):
                stale = ctx.kube.get(ref, own, namespace)
                if stale is not None and owned_by(stale, uid):
                    ctx.kube.delete(ref, own, namespace)
                    ctx.post_event(
                        body, "Normal", f"{ref.kind}Deleted",
                        f"deleted {ref.kind} {own}: output.mode is {spec.output.mode}, nothing to serve",
                    )  # fmt: skip
            return
        children = build_scrape_children(
            spec, name=name, namespace=namespace, default_image=ctx.settings.runtime_image
        )
        wanted: tuple[tuple[ResourceRef, Obj, Callable[[Obj, Obj], Obj | None]], ...] = (
            (DEPLOYMENTS, children.deployment, _deployment_update),
            (SERVICES, children.service, _service_update),
        )
        for ref, obj, update in wanted:
            kopf.adopt(obj, owner=body)
            _, created = ensure_child(ctx.kube, ref, obj, owner_uid=uid, update=update)
            if created:
                ctx.metrics.children.labels(kind=KIND, child=ref.kind).inc()
                ctx.post_event(
                    body, "Normal", f"{ref.kind}Created",
                    f"created {ref.kind} {obj['metadata']['name']}: serves the forecasts for scraping at "
                    f"{children.endpoint}",
                )  # fmt: skip

    def ensure_model_version(self, body: Mapping[str, Any], spec: ForecastTaskSpec, h: Harvest) -> str | None:
        """Make the ModelVersion of the model a training run saved; its name, or ``None`` if none."""
        ctx = self.ctx
        manifest = build_forecast_model_version(
            body,
            h.doc,
            trained=_parse_time(h.doc.get("lastTrainTime")) or h.finished,
            image=spec.runtime.image or ctx.settings.runtime_image,
        )
        if manifest is None:
            return None  # a baseline (or predict-only) run: see build_forecast_model_version
        ns, mv_name = body["metadata"]["namespace"], manifest["metadata"]["name"]
        existing = ctx.kube.get(MODEL_VERSIONS, mv_name, ns)
        if existing is None:
            try:
                existing = ctx.kube.create(MODEL_VERSIONS, manifest, ns)
            except KubeApiError as exc:
                if not exc.conflict:
                    raise
                existing = ctx.kube.get(MODEL_VERSIONS, mv_name, ns) or manifest
            else:
                ctx.metrics.children.labels(kind=KIND, child="ModelVersion").inc()
                ctx.post_event(
                    body, "Normal", "ModelVersionCreated",
                    f"ModelVersion {mv_name} ({manifest['spec']['modelName']} {manifest['spec']['version']}) "
                    f"holds the model run {h.job} trained ({manifest['spec']['artifact']['uri']})",
                )  # fmt: skip
        theirs = ((existing.get("spec") or {}).get("artifact") or {}).get("uri")
        if theirs != manifest["spec"]["artifact"]["uri"]:
            ctx.post_event(
                body, "Warning", "ModelVersionConflict",
                f"ModelVersion {ns}/{mv_name} exists for another artifact ({theirs}), so the model run "
                f"{h.job} trained is not registered: rename or delete that ModelVersion",
            )  # fmt: skip
            return None
        return str(mv_name)

    def _prune(self, namespace: str, jobs: Sequence[Obj]) -> None:
        by_kind: dict[str, list[Obj]] = {}
        for job in jobs:
            if job_state(job) != "Running":
                by_kind.setdefault(self._kind(job), []).append(job)
        for kind_jobs in by_kind.values():
            kind_jobs.sort(key=lambda j: (j["metadata"]["annotations"][ANNOTATION_SCHEDULED],
                                          j["metadata"].get("creationTimestamp") or ""))  # fmt: skip
            for old in kind_jobs[:-HISTORY_LIMIT]:
                try:
                    self.ctx.kube.delete(JOBS, old["metadata"]["name"], namespace)
                except KubeApiError as exc:  # pruning is housekeeping: the next reconcile tries again
                    log.warning(
                        "could not delete old run Job %s/%s: %s", namespace, old["metadata"]["name"], exc
                    )

    # -- timer and deletion --

    def due(self, body: Mapping[str, Any], now: datetime) -> bool:
        """Whether the timer should reconcile (no API call when nothing is running or due)."""
        status = body.get("status") or {}
        meta = body.get("metadata") or {}
        if status.get("activeRun"):
            return True
        if status.get("observedGeneration") != meta.get("generation"):
            return True
        nxt = _parse_time(status.get("nextRunTime"))
        return nxt is not None and nxt <= now

    def _may_have_pushed(self, body: Mapping[str, Any], jobs: list[Obj]) -> bool:
        """Whether a run of the task can have pushed forecasts: one reported, succeeded or started.

        A task whose runs never started (unschedulable, or deleted right after ``kubectl apply``)
        has no Pushgateway group, so its deletion must not wait on a Pushgateway that may not exist.
        """
        if (body.get("status") or {}).get("lastPredictTime"):
            return True
        namespace = body["metadata"]["namespace"]
        for job in jobs:
            if job_state(job) == "Succeeded":
                return True
            pods = self._pods(namespace, job["metadata"]["name"])
            if any((p.get("status") or {}).get("phase", "Pending") != "Pending" for p in pods):
                return True
        return False

    def on_delete(self, body: Mapping[str, Any], retry: int) -> None:
        """Stop the task's runs, then delete its Pushgateway group (what its runs pushed).

        The group is deleted only when a run may have pushed one; an unreachable Pushgateway is
        retried five times (10 s, 20 s... apart), then given up with a Warning event, so a task
        is never stuck in deletion.
        """
        import kopf

        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        try:
            spec = ForecastTaskSpec.model_validate(dict(body.get("spec") or {}))
        except ValueError:
            self.forget(namespace, name)
            return  # an invalid task never ran, so it never pushed
        jobs = self._jobs(namespace, name)
        pushed = self._may_have_pushed(body, jobs)
        # A run still under way would push again after the group is gone.
        for job in jobs:
            if job_state(job) == "Running":
                self.ctx.kube.delete(JOBS, job["metadata"]["name"], namespace)
        if spec.output.mode == "pushgateway" and pushed:
            from foresight.prometheus.client import RetryPolicy
            from foresight.prometheus.errors import PrometheusError
            from foresight.prometheus.pushgateway import delete_group

            key = {"namespace": namespace, "task": name}
            try:
                delete_group(spec.output.pushgateway_url, grouping_key=key, retry=RetryPolicy(attempts=2))
            except PrometheusError as exc:
                if retry < 5:
                    raise kopf.TemporaryError(
                        f"Pushgateway group {key} not deleted yet ({exc}); retrying", delay=10 * (retry + 1)
                    ) from exc
                self.ctx.post_event(
                    body, "Warning", ForecastReason.PUSHGATEWAY_UNAVAILABLE.value,
                    f"gave up deleting Pushgateway group {key} at {spec.output.pushgateway_url}"
                    f" after {retry + 1} tries ({exc}); delete it by hand",
                )  # fmt: skip
        self.forget(namespace, name)


def _deployment_update(desired: Obj, existing: Obj) -> Obj | None:
    """Patch the forecast server's Deployment only when the spec the operator wants changed."""
    want = desired["metadata"]["annotations"][SPEC_HASH_ANNOTATION]
    have = ((existing.get("metadata") or {}).get("annotations") or {}).get(SPEC_HASH_ANNOTATION)
    if want == have:
        return None
    espec = existing.get("spec") or {}
    return {
        "metadata": {"annotations": {SPEC_HASH_ANNOTATION: want}},
        "spec": {
            "replicas": desired["spec"]["replicas"],
            # merge_diff nulls what the desired template no longer has (a removed env var or volume).
            "template": merge_diff(espec.get("template") or {}, desired["spec"]["template"]),
        },
    }


def _service_update(desired: Obj, existing: Obj) -> Obj | None:
    """Ports, selector and the ``prometheus.io`` annotations, when they differ."""
    patch: Obj = {}
    want_ann = desired["metadata"]["annotations"]
    have_ann = (existing.get("metadata") or {}).get("annotations") or {}
    if any(have_ann.get(k) != v for k, v in want_ann.items()):
        patch["metadata"] = {"annotations": want_ann}
    dspec, espec = desired["spec"], existing.get("spec") or {}
    ports = [(p.get("name"), p.get("port"), p.get("targetPort")) for p in espec.get("ports") or []]
    if ports != [(p["name"], p["port"], p["targetPort"]) for p in dspec["ports"]] or (
        espec.get("selector") != dspec["selector"]
    ):
        patch["spec"] = {"ports": dspec["ports"], "selector": dspec["selector"]}
    return patch or None


def _cond_status(status: Mapping[str, Any], ctype: str) -> str | None:
    for c in status.get("conditions") or []:
        if c.get("type") == ctype:
            return str(c.get("status"))
    return None


def register_forecasttask(
    registry: Any,
    ctx: HandlerContext,
    *,
    tick: float = 5.0,
    controller_factory: Callable[[HandlerContext], ForecastTaskController] | None = None,
) -> ForecastTaskController:
    """Register the ForecastTask handlers; ``tick`` is how often (seconds) due runs are looked for."""
    import kopf

    controller = (
        controller_factory(ctx)
        if controller_factory is not None
        else ForecastTaskController(ctx, ForecastTaskMetrics(ctx.metrics.registry))
    )
    plural = FORECAST_TASK.plural

    def reconcile(body: Any, retry: int, **_: Any) -> None:
        guarded(ctx, FORECAST_TASKS, body, retry, lambda: controller.reconcile(body), invalid_phase="Failed")

    kopf.on.resume(GROUP, VERSION, plural, registry=registry, id="reconcile")(reconcile)
    kopf.on.create(GROUP, VERSION, plural, registry=registry, id="reconcile")(reconcile)
    kopf.on.update(GROUP, VERSION, plural, registry=registry, id="reconcile", field="spec")(reconcile)

    def on_tick(body: Any, **kwargs: Any) -> None:
        if controller.due(body, ctx.clock()):
            retry = int(kwargs.get("retry") or 0)
            guarded(
                ctx, FORECAST_TASKS, body, retry, lambda: controller.reconcile(body), invalid_phase="Failed"
            )

    kopf.timer(GROUP, VERSION, plural, registry=registry, id="schedule", interval=tick, initial_delay=tick)(
        on_tick
    )

    def on_delete(body: Any, retry: int, **_: Any) -> None:
        controller.on_delete(body, retry)

    kopf.on.delete(GROUP, VERSION, plural, registry=registry, id="cleanup")(on_delete)

    def on_job_event(body: Any, type: str | None, logger: Any, **_: Any) -> None:
        meta = body.get("metadata") or {}
        owner = next((r for r in meta.get("ownerReferences") or [] if r.get("kind") == KIND), None)
        if owner is None or job_state(body) == "Running":
            return
        task = ctx.kube.get(FORECAST_TASKS, owner["name"], meta["namespace"])
        if task is None:
            return
        try:
            controller.reconcile(task)
        except Exception as exc:  # the timer catches up on the next tick
            logger.warning(f"ForecastTask {owner['name']} not reconciled after Job event {type}: {exc}")

    kopf.on.event(
        "batch",
        "v1",
        "jobs",
        registry=registry,
        id="forecasttask-job-events",
        labels={MANAGED_BY_LABEL: MANAGED_BY, KIND_LABEL: KIND},
    )(on_job_event)
    return controller
