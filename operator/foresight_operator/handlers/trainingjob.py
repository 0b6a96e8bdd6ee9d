"""TrainingJob, single-pod backend: spec -> ConfigMap (TrainConfig) + Job -> status from the Job.

Handlers (thin): create / resume / spec update run :func:`reconcile` (validate, plan, make the
children, sync status); every change of a Job we own runs :func:`sync_status`. The pod never
writes to the API: its result (a :class:`~foresight.contract.training.TrainingResult`: metrics,
artifact, or the failure reason) arrives in its termination message, which
:func:`training_status` reads from the pod status, and while it trains a timer reads the newest
epoch line of its log (:func:`progress_from_log`) into ``status.progress`` (epoch / epochs, latest
metrics, ETA).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import yaml
from foresight.api.meta import GROUP, VERSION, ConditionType, Reason
from foresight.api.trainingjob import TRAINING_JOB, TrainingJobSpec, TrainingPhase, TrainingReason
from foresight.contract.training import TrainingResult
from foresight.kube import CONFIGMAPS, JOBS, SERVICES, KubeApiError

from ..builders import build_configmap, build_job, plan_training
from ..builders.modelversion_from_training import TRAINING_JOB_UID_ANNOTATION, build_model_version
from ..builders.training import (
    BUILTIN_TASK_ANNOTATION,
    CONFIG_FILE,
    JOB_INDEX_KEY,
    MASTER_PORT_ANNOTATION,
    DdpPlan,
    TrainingPlan,
    build_ddp_job,
    build_ddp_service,
)
from ..reconcile import (
    MODEL_VERSIONS,
    TRAINING_JOBS,
    SpecError,
    WaitError,
    child_name,
    find_condition,
    format_time,
    get_or_create,
    job_pods,
    owner_labels,
    parse_time,
    pods_worth_reading,
    set_condition,
    true_condition,
    write_status,
)
from ..reconcile.pods import ended, finished_at, termination_message
from ..reconcile.updates import suspend_update
from .children import make_child, watch_children
from .common import guarded, on_spec, parse_spec, wait_for_secrets, write_and_report_status
from .context import HandlerContext
from .trainingjob_ray import (
    RAYJOBS,
    rayjob_as_job,
    rayjob_name,
    reconcile_rayjob,
    register_rayjob_events,
    search_message,
    search_status,
)

__all__ = [
    "ensure_model_version",
    "progress_from_log",
    "reconcile",
    "refresh_progress",
    "register_trainingjob",
    "sync_status",
    "training_status",
]

log = logging.getLogger(__name__)
Obj = dict[str, Any]
KIND = TRAINING_JOB.kind
TERMINAL = (TrainingPhase.SUCCEEDED, TrainingPhase.FAILED)
ACTIVE = (TrainingPhase.PENDING, TrainingPhase.RUNNING)
LAST_WORDS = 1500
"""Characters of a failed pod's log tail quoted in the condition message."""


def config_map_name(name: str) -> str:
    return child_name(name, "config")


def job_name(name: str) -> str:
    return child_name(name, "train")


def _plan(ctx: HandlerContext, body: Mapping[str, Any], teacher_uri: str | None = None) -> TrainingPlan:
    meta = body["metadata"]
    spec = parse_spec(TrainingJobSpec, body.get("spec"))
    return plan_training(
        spec,
        namespace=meta["namespace"],
        name=meta["name"],
        config_map=config_map_name(meta["name"]),
        default_image=ctx.settings.runtime_image,
        builtin_task=(meta.get("annotations") or {}).get(BUILTIN_TASK_ANNOTATION),
        master_port=(meta.get("annotations") or {}).get(MASTER_PORT_ANNOTATION),
        teacher_uri=teacher_uri,
    )


def _teacher_uri(ctx: HandlerContext, body: Mapping[str, Any]) -> str | None:
    """The artifact URI of the distillation teacher ModelVersion the spec names (waits until it exists)."""
    spec = parse_spec(TrainingJobSpec, body.get("spec"))
    if spec.distillation is None or spec.distillation.teacher.model_version is None:
        return None
    ns, teacher = body["metadata"]["namespace"], spec.distillation.teacher.model_version
    mv = ctx.kube.get(MODEL_VERSIONS, teacher, ns)
    uri = ((mv or {}).get("spec") or {}).get("artifact", {}).get("uri")
    if not uri:
        raise WaitError(
            f"teacher ModelVersion {ns}/{teacher} not found: create it or fix "
            "distillation.teacher.modelVersion; the TrainingJob starts once it exists",
            reason=TrainingReason.TEACHER_NOT_FOUND,
            delay=max(ctx.settings.retry_delay, 5.0),
        )
    return str(uri)


def reconcile(ctx: HandlerContext, body: Any) -> None:
    """Make the ConfigMap and Job of one TrainingJob exist, then bring its status up to date."""
    meta = body["metadata"]
    ns, name = meta["namespace"], meta["name"]
    status = body.get("status") or {}
    if status.get("phase") in TERMINAL and status.get("observedGeneration") == meta.get("generation"):
        # Finished: never start the training again (its Job may be gone after ttlSecondsAfterFinished).
        # An operator stopped between the Succeeded status and the ModelVersion makes it now.
        if status.get("phase") == TrainingPhase.SUCCEEDED and not status.get("modelVersion"):
            ensure_model_version(ctx, body)
        return
    plan = _plan(ctx, body, _teacher_uri(ctx, body))
    wait_for_secrets(ctx, ns, plan.secret_env.values(), waiting="the TrainingJob starts")
    labels = owner_labels(KIND, name)
    cm = build_configmap(
        name=config_map_name(name),
        namespace=ns,
        labels=labels,
        data={CONFIG_FILE: yaml.safe_dump(plan.config, sort_keys=True)},
    )
    make_child(ctx, body, CONFIGMAPS, cm, announce=f"ConfigMap {cm['metadata']['name']} holds the run config")
    spec = parse_spec(TrainingJobSpec, body.get("spec"))
    if spec.distributed.backend == "ray":
        reconcile_rayjob(ctx, body, plan, spec, labels)  # a KubeRay RayJob instead of the Job
        sync_status(ctx, ns, name, plan=plan)
        return
    job = build_job(
        name=job_name(name),
        namespace=ns,
        labels=labels,
        image=plan.image,
        pull_policy=plan.pull_policy,
        command=plan.command,
        args=plan.args,
        env=plan.env,
        secret_env=plan.secret_env,
        resources=spec.resources,
        placement=spec.placement,
        run_policy=spec.run_policy,
        volumes=plan.volumes,
        working_dir=plan.working_dir,
    )
    if plan.ddp is not None:
        job = _ddp_children(ctx, body, plan.ddp, job)
    make_child(
        ctx,
        body,
        JOBS,
        job,
        update=suspend_update,
        announce=f"Job {job['metadata']['name']} runs the training",
    )
    sync_status(ctx, ns, name, plan=plan)


# --- distributed.backend torch: an Indexed Job of DDP workers and their headless Service ------


def service_name(name: str) -> str:
    return child_name(name, "workers")


def _ddp_children(ctx: HandlerContext, body: Any, ddp: DdpPlan, job: Obj) -> Obj:
    """Make the workers' headless Service exist; return ``job`` made into the Indexed DDP Job.

    The Service comes first: worker pods resolve rank 0 through it as soon as they start.
    """
    meta = body["metadata"]
    svc = build_ddp_service(
        name=service_name(meta["name"]),
        namespace=meta["namespace"],
        labels=owner_labels(KIND, meta["name"]),
        job_name=job["metadata"]["name"],
        ddp=ddp,
    )
    make_child(
        ctx, body, SERVICES, svc, announce=f"headless Service {svc['metadata']['name']} names the DDP workers"
    )
    return build_ddp_job(job, ddp=ddp, service=svc["metadata"]["name"])


# --- status from the Job and its pods ----------------------------------------------------------


def _workers_summary(job: Mapping[str, Any]) -> str | None:
    """``"2/2 workers ready, 0 succeeded"`` for an Indexed (DDP) Job, else ``None``."""
    spec = job.get("spec") or {}
    if spec.get("completionMode") != "Indexed":
        return None
    js = job.get("status") or {}
    workers = int(spec.get("completions") or 1)
    return f"{int(js.get('ready') or 0)}/{workers} workers ready, {int(js.get('succeeded') or 0)} succeeded"


def _reporting_pods(pods: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The pods whose termination message carries the run's result: rank 0's in a DDP job (only
    rank 0 exports the model and writes its URI), every pod otherwise."""
    rank0 = [
        p for p in pods if ((p.get("metadata") or {}).get("annotations") or {}).get(JOB_INDEX_KEY) == "0"
    ]
    indexed = any(JOB_INDEX_KEY in ((p.get("metadata") or {}).get("annotations") or {}) for p in pods)
    return rank0 if indexed else list(pods)


def _succeeded(pods: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [p for p in _reporting_pods(pods) if (p.get("status") or {}).get("phase") == "Succeeded"]


def _metric_summary(metrics: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={float(v):.4g}" for k, v in sorted(metrics.items()) if isinstance(v, int | float))


def _job_phase(job: Mapping[str, Any] | None) -> tuple[TrainingPhase, str, str]:
    """``(phase, reason, message)`` of a TrainingJob from its Job (or the RayJob presented as one)."""
    if job is None:
        return TrainingPhase.PENDING, Reason.PENDING, "creating the training Job"
    if true_condition(job, "Complete") is not None:
        return TrainingPhase.SUCCEEDED, Reason.SUCCEEDED, "training finished"
    failed = true_condition(job, "Failed")
    if failed is not None:
        reason = str(failed.get("reason") or Reason.FAILED)
        return TrainingPhase.FAILED, reason, str(failed.get("message") or "the training Job failed")
    if (job.get("spec") or {}).get("suspend"):
        return (
            TrainingPhase.SUSPENDED,
            Reason.SUSPENDED,
            "runPolicy.suspend is true: set it to false to start",
        )
    if int((job.get("status") or {}).get("active") or 0) > 0:
        return TrainingPhase.RUNNING, Reason.RUNNING, f"training in Job {job['metadata']['name']}"
    return TrainingPhase.PENDING, Reason.PENDING, "waiting for the training pod to start"


def _fold_result(status: Obj, result: TrainingResult, *, epochs: int, artifact_uri: str | None) -> str:
    """A success's result into ``status`` (metrics, progress, trials, artifact); returns the message."""
    metrics = dict(result.metrics or {})
    status["bestMetrics"] = metrics
    status["progress"] = {"epoch": int(result.epochs or 0), "epochs": epochs, "metrics": metrics}
    if result.resumed_from_epoch is not None:
        status["resumedFromEpoch"] = result.resumed_from_epoch
    if result.data_quality is not None:
        status["dataQuality"] = result.data_quality
    if result.trials is not None:
        # A Ray Tune search: its trials, the best one, and the refit of the best config.
        status.update(search_status(result))
        status["progress"]["epoch"] = int(result.epochs or epochs or 0)
    runtime_uri = result.artifact_uri or ""
    uri = runtime_uri if runtime_uri.startswith("s3://") else (artifact_uri or runtime_uri or None)
    if uri:
        status["artifactUri"] = uri
    summary = _metric_summary(metrics)
    if "bestTrial" in status:
        return search_message(result) + (f"; refit: {summary}" if summary else "")
    return f"trained {result.epochs} epochs" + (f"; {summary}" if summary else "")


def _conditions(
    status: Obj, phase: TrainingPhase, reason: str, message: str, *, generation: Any, now: datetime
) -> list[Obj]:
    conds = status.get("conditions") or []
    ready = "True" if phase == TrainingPhase.SUCCEEDED else "False"
    conds = set_condition(conds, ConditionType.READY, ready, reason, message, generation=generation, now=now)
    progressing = "True" if phase in ACTIVE else "False"
    conds = set_condition(
        conds, ConditionType.PROGRESSING, progressing, reason, message, generation=generation, now=now
    )
    degraded = find_condition(conds, ConditionType.DEGRADED)
    if degraded is not None and degraded.get("status") == "True":
        conds = set_condition(
            conds,
            ConditionType.DEGRADED,
            "False",
            Reason.RECONCILED,
            "reconciled again",
            generation=generation,
            now=now,
        )
    return conds


def training_status(
    body: Mapping[str, Any],
    job: Mapping[str, Any] | None,
    pods: Sequence[Mapping[str, Any]],
    *,
    now: datetime,
    artifact_uri: str | None,
) -> Obj:
    """The whole TrainingJob status from the Job and its pods (pure)."""
    meta = body["metadata"]
    generation = meta.get("generation")
    status: Obj = dict(body.get("status") or {})
    if job is None and status.get("phase") in TERMINAL:
        return status  # the Job was deleted after it finished (ttlSecondsAfterFinished): keep the result
    jstatus: Obj = dict((job or {}).get("status") or {})
    phase, reason, message = _job_phase(job)
    workers = _workers_summary(job) if job is not None else None
    if workers is not None and phase in ACTIVE:
        message = f"{message}; {workers}"
    last = ended(pods)
    if phase == TrainingPhase.SUCCEEDED:
        winners = _succeeded(last) or last
        result = (
            TrainingResult.from_termination_message(termination_message(winners[-1])) if winners else None
        )
        if result is not None and result.model_fields_set:  # an empty message says nothing
            epochs = int((body.get("spec") or {}).get("epochs") or 0)
            message = _fold_result(status, result, epochs=epochs, artifact_uri=artifact_uri)
        if "artifactUri" not in status and artifact_uri:
            # No result message (a RayJob leaves none): the model is where the plan told it to go.
            status["artifactUri"] = artifact_uri
    elif phase == TrainingPhase.FAILED and last:
        raw = termination_message(last[-1])
        failure = TrainingResult.from_termination_message(raw)
        if failure is not None and failure.data_quality is not None:
            status["dataQuality"] = failure.data_quality  # a DataQualityFailed run says what is wrong
        if failure is not None and failure.reason:
            reason = failure.reason
            message = f"{failure.message or ''} (Job: {message})".strip()
        elif raw:
            message = f"{message}; last pod said: {raw[-LAST_WORDS:]}"
    status["phase"] = phase
    status["observedGeneration"] = generation
    status["restarts"] = max(0, int(jstatus.get("failed") or 0) - (1 if phase == TrainingPhase.FAILED else 0))
    if jstatus.get("startTime"):
        status["startTime"] = jstatus["startTime"]
    if jstatus.get("completionTime"):
        status["completionTime"] = jstatus["completionTime"]
    elif phase == TrainingPhase.FAILED and "completionTime" not in status:
        status["completionTime"] = format_time(now)
    status["conditions"] = _conditions(status, phase, reason, message, generation=generation, now=now)
    return status


def sync_status(ctx: HandlerContext, namespace: str, name: str, *, plan: TrainingPlan | None = None) -> None:
    """Recompute one TrainingJob's status from its Job and pods, and post an event on a phase change."""
    jname = job_name(name)

    def compute(current: Obj) -> Obj | None:
        # The owner is read before the Job: a write based on an older Job then fails its precondition.
        if ((current.get("spec") or {}).get("distributed") or {}).get("backend") == "ray":
            job = rayjob_as_job(ctx.kube.get(RAYJOBS, rayjob_name(name), namespace))
        else:
            job = ctx.kube.get(JOBS, jname, namespace)
        pods = job_pods(ctx.kube, namespace, jname) if pods_worth_reading(job) else []
        uri = plan.artifact_uri if plan is not None else None
        if uri is None:
            try:
                uri = _plan(ctx, current).artifact_uri
            except SpecError:
                return None  # an invalid spec's status is written by the reconcile handler
        return training_status(current, job, pods, now=ctx.clock(), artifact_uri=uri)

    result = write_and_report_status(
        ctx, TRAINING_JOBS, namespace, name, compute, warn_phases=(TrainingPhase.FAILED,)
    )
    if result is None:
        return
    if result.new.get("phase") == TrainingPhase.SUCCEEDED and not result.new.get("modelVersion"):
        ensure_model_version(ctx, {**result.body, "status": result.new})


# --- progress while training: the newest epoch line of the reporting pod's log ---------------

PROGRESS_TAIL_LINES = 200
"""Log lines read per progress check: an epoch line plus what the runtime logs around it."""


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def progress_from_log(text: str, *, epochs: int) -> Obj | None:
    """``status.progress`` from the newest ``{"event": "epoch", ...}`` line of a training log (pure).

    ``None`` while no epoch has finished. Non-finite metrics (a JSON ``null``) are left out.
    """
    for line in reversed(text.splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if not isinstance(doc, dict) or doc.get("event") != "epoch":
            continue
        named = {"loss": doc.get("loss"), "val_loss": doc.get("val_loss"), **(doc.get("metrics") or {})}
        metrics = {str(k): v for k, raw in named.items() if (v := _finite(raw)) is not None}
        progress: Obj = {
            "epoch": int(doc.get("epoch") or 0),
            "epochs": int(doc.get("epochs") or epochs),
            "metrics": metrics,
        }
        eta = _finite(doc.get("eta_seconds"))
        if eta is not None and eta >= 0:
            progress["etaSeconds"] = round(eta)
        return progress
    return None


def refresh_progress(ctx: HandlerContext, body: Mapping[str, Any]) -> Obj | None:
    """Read a Running TrainingJob's progress from its reporting pod's log into its status.

    Returns the progress written, or ``None`` (not running, no pod yet, no epoch yet, unchanged).
    A log that cannot be read is skipped until the next tick: progress is a convenience.
    """
    status = body.get("status") or {}
    spec = body.get("spec") or {}
    if (
        status.get("phase") != TrainingPhase.RUNNING
        or (spec.get("distributed") or {}).get("backend") == "ray"
    ):
        return None  # a RayJob's driver runs in KubeRay's pods: its progress is on the Ray dashboard
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    pods = job_pods(ctx.kube, namespace, job_name(name))
    running = [p for p in _reporting_pods(pods) if (p.get("status") or {}).get("phase") == "Running"]
    if not running:
        return None
    pod = max(running, key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp") or ""))
    try:
        text = ctx.kube.read_log(namespace, pod["metadata"]["name"], tail_lines=PROGRESS_TAIL_LINES)
    except KubeApiError as exc:
        log.debug("no progress for TrainingJob %s/%s yet: %s", namespace, name, exc)
        return None
    progress = progress_from_log(text, epochs=int(spec.get("epochs") or 0))
    if progress is None:
        return None

    def compute(current: Obj) -> Obj | None:
        now = dict(current.get("status") or {})
        if now.get("phase") != TrainingPhase.RUNNING or now.get("progress") == progress:
            return None
        return {**now, "progress": progress}

    result = write_status(ctx.kube, TRAINING_JOBS, namespace, name, compute)
    if result is None or not result.changed:
        return None
    ctx.metrics.record_status(KIND, namespace, name, result.new)
    return progress


# --- success path: the ModelVersion of the trained model ------------------------------------


def _result(ctx: HandlerContext, namespace: str, name: str) -> TrainingResult | None:
    """The result of the pod that succeeded, while the Job's pods still exist."""
    won = [p for p in ended(job_pods(ctx.kube, namespace, job_name(name))) if finished_at(p)]
    won = _succeeded(won)
    return TrainingResult.from_termination_message(termination_message(won[-1])) if won else None


def ensure_model_version(ctx: HandlerContext, body: Mapping[str, Any]) -> str | None:
    """Make the ModelVersion of a Succeeded TrainingJob exist and name it in ``status.modelVersion``.

    Idempotent: the name is deterministic, so a second call (or a restarted operator) finds the
    one made before. Returns its name, or ``None`` when the spec asks for none.
    """
    meta = body["metadata"]
    ns, name, uid = meta["namespace"], meta["name"], meta["uid"]
    spec = parse_spec(TrainingJobSpec, body.get("spec"))
    if spec.output is None or not spec.output.create_model_version:
        return None
    status: Mapping[str, Any] = body.get("status") or {}
    artifact_uri = str(status.get("artifactUri") or "")
    if not artifact_uri:
        ctx.post_event(
            body,
            "Warning",
            "NoArtifact",
            "training succeeded but reported no artifact URI, so no ModelVersion was made: check that "
            "the task writes its model to output.uri",
        )
        return None
    manifest = build_model_version(
        body,
        artifact_uri=artifact_uri,
        finished=parse_time(status.get("completionTime")) or ctx.clock(),
        image=_plan(ctx, body).image,
        result=_result(ctx, ns, name),
    )
    mv_name = manifest["metadata"]["name"]
    existing, created = get_or_create(ctx.kube, MODEL_VERSIONS, manifest)
    if created:
        ctx.metrics.children.labels(kind=KIND, child="ModelVersion").inc()
        ctx.post_event(
            body,
            "Normal",
            "ModelVersionCreated",
            f"ModelVersion {mv_name} ({manifest['spec']['modelName']} "
            f"{manifest['spec']['version']}) holds the trained model",
        )
    made_by = ((existing.get("metadata") or {}).get("annotations") or {}).get(TRAINING_JOB_UID_ANNOTATION)
    if made_by != uid:
        ctx.post_event(
            body,
            "Warning",
            "ModelVersionConflict",
            f"ModelVersion {ns}/{mv_name} exists and was not made by this TrainingJob: rename or "
            "delete it to get this job's ModelVersion",
        )
        return None

    def compute(current: Obj) -> Obj | None:
        now = dict(current.get("status") or {})
        return None if now.get("modelVersion") == mv_name else {**now, "modelVersion": mv_name}

    write_status(ctx.kube, TRAINING_JOBS, ns, name, compute)
    return str(mv_name)


def register_trainingjob(registry: Any, ctx: HandlerContext) -> None:
    import kopf

    plural = TRAINING_JOB.plural

    def on_trainingjob(body: Any, retry: int, **_: Any) -> None:
        guarded(
            ctx, TRAINING_JOBS, body, retry, lambda: reconcile(ctx, body), invalid_phase=TrainingPhase.FAILED
        )

    on_spec(registry, plural, "reconcile", on_trainingjob)

    def on_progress_tick(body: Any, logger: Any, **_: Any) -> None:
        try:
            refresh_progress(ctx, body)
        except KubeApiError as exc:  # the next tick tries again
            logger.debug(f"progress of TrainingJob {body['metadata']['name']} not read: {exc}")

    kopf.timer(
        GROUP,
        VERSION,
        plural,
        registry=registry,
        id="progress",
        interval=ctx.settings.progress_interval,
        initial_delay=ctx.settings.progress_interval,
        when=lambda status, **_: (status or {}).get("phase") == TrainingPhase.RUNNING,
    )(on_progress_tick)

    watch_children(
        registry,
        JOBS,
        owner_kind=KIND,
        handler_id="trainingjob-job-events",
        on_change=lambda namespace, owner, _type, _job: sync_status(ctx, namespace, owner),
    )
    register_rayjob_events(registry, lambda namespace, owner: sync_status(ctx, namespace, owner))
