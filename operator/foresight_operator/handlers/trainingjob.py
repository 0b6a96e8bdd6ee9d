"""TrainingJob, single-pod backend: spec -> ConfigMap (TrainConfig) + Job -> status from the Job.

Handlers (thin): create / resume / spec update run :func:`reconcile` (validate, plan, make the
children, sync status); every change of a Job we own runs :func:`sync_status`. The pod never
writes to the API: its result (metrics, artifact, or the failure reason) arrives in its
termination message, which :func:`training_status` reads from the pod status, and while it
trains a timer reads the newest epoch line of its log (:func:`progress_from_log`) into
``status.progress`` (epoch / epochs, latest metrics, ETA).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import yaml
from foresight.api.meta import GROUP, VERSION
from foresight.api.modelversion import MODEL_VERSION
from foresight.api.trainingjob import TRAINING_JOB, TrainingJobSpec

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
from ..kube import CONFIGMAPS, JOBS, PODS, SECRETS, SERVICES, KubeApiError
from ..reconcile import (
    KIND_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    SpecError,
    WaitError,
    child_name,
    ensure_child,
    format_time,
    owner_labels,
    set_condition,
    write_status,
)
from .common import guarded, kind_ref, parse_spec
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
    "TRAINING_JOBS",
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
KIND = "TrainingJob"
TRAINING_JOBS = kind_ref(KIND, TRAINING_JOB.plural)
MODEL_VERSIONS = kind_ref("ModelVersion", MODEL_VERSION.plural)
TERMINAL = ("Succeeded", "Failed")
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"


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
            reason="TeacherNotFound",
            delay=max(ctx.settings.retry_delay, 5.0),
        )
    return str(uri)


def _job_update(desired: Obj, existing: Obj) -> Obj | None:
    # A Job's pod template is immutable; suspend is the one knob that may change after creation.
    want = bool(desired["spec"].get("suspend"))
    return {"spec": {"suspend": want}} if bool((existing.get("spec") or {}).get("suspend")) != want else None


def reconcile(ctx: HandlerContext, body: Any) -> None:
    """Make the ConfigMap and Job of one TrainingJob exist, then bring its status up to date."""
    import kopf

    meta = body["metadata"]
    ns, name, uid = meta["namespace"], meta["name"], meta["uid"]
    status = body.get("status") or {}
    if status.get("phase") in TERMINAL and status.get("observedGeneration") == meta.get("generation"):
        # Finished: never start the training again (its Job may be gone after ttlSecondsAfterFinished).
        # An operator stopped between the Succeeded status and the ModelVersion makes it now.
        if status.get("phase") == "Succeeded" and not status.get("modelVersion"):
            ensure_model_version(ctx, body)
        return
    plan = _plan(ctx, body, _teacher_uri(ctx, body))
    for secret in plan.secrets:
        if ctx.kube.get(SECRETS, secret, ns) is None:
            raise WaitError(
                f"Secret {ns}/{secret} not found: create it with keys accessKey and secretKey "
                "(S3 credentials); "
                "the TrainingJob starts once it exists",
                reason="SecretNotFound",
                delay=max(ctx.settings.retry_delay, 5.0),
            )
    labels = owner_labels(KIND, name)
    cm = build_configmap(
        name=config_map_name(name),
        namespace=ns,
        labels=labels,
        data={CONFIG_FILE: yaml.safe_dump(plan.config, sort_keys=True)},
    )
    kopf.adopt(cm, owner=body)
    _, created = ensure_child(ctx.kube, CONFIGMAPS, cm, owner_uid=uid)
    if created:
        ctx.metrics.children.labels(kind=KIND, child="ConfigMap").inc()
        ctx.post_event(
            body, "Normal", "ConfigMapCreated", f"ConfigMap {cm['metadata']['name']} holds the run config"
        )
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
    kopf.adopt(job, owner=body)
    _, created = ensure_child(ctx.kube, JOBS, job, owner_uid=uid, update=_job_update)
    if created:
        ctx.metrics.children.labels(kind=KIND, child="Job").inc()
        ctx.post_event(body, "Normal", "JobCreated", f"Job {job['metadata']['name']} runs the training")
    sync_status(ctx, ns, name, plan=plan)


# --- distributed.backend torch: an Indexed Job of DDP workers and their headless Service ------


def service_name(name: str) -> str:
    return child_name(name, "workers")


def _ddp_children(ctx: HandlerContext, body: Any, ddp: DdpPlan, job: Obj) -> Obj:
    """Make the workers' headless Service exist; return ``job`` made into the Indexed DDP Job.

    The Service comes first: worker pods resolve rank 0 through it as soon as they start.
    """
    import kopf

    meta = body["metadata"]
    ns, name = meta["namespace"], meta["name"]
    svc = build_ddp_service(
        name=service_name(name),
        namespace=ns,
        labels=owner_labels(KIND, name),
        job_name=job["metadata"]["name"],
        ddp=ddp,
    )
    kopf.adopt(svc, owner=body)
    _, created = ensure_child(ctx.kube, SERVICES, svc, owner_uid=meta["uid"])
    if created:
        ctx.metrics.children.labels(kind=KIND, child="Service").inc()
        ctx.post_event(
            body,
            "Normal",
            "ServiceCreated",
            f"headless Service {svc['metadata']['name']} names the DDP workers",
        )
    return build_ddp_job(job, ddp=ddp, service=svc["metadata"]["name"])


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


def _termination(pod: Mapping[str, Any]) -> tuple[Obj | None, str]:
    """``(parsed JSON message or None, raw message)`` of a pod's terminated main container."""
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        term = (cs.get("state") or {}).get("terminated")
        if term:
            raw = str(term.get("message") or "")
            try:
                doc = json.loads(raw) if raw.strip().startswith("{") else None
            except ValueError:
                doc = None
            return (doc if isinstance(doc, dict) else None), raw
    return None, ""


def _finished_at(pod: Mapping[str, Any]) -> str:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        term = (cs.get("state") or {}).get("terminated")
        if term:
            return str(term.get("finishedAt") or "")
    return ""


def _metric_summary(metrics: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={float(v):.4g}" for k, v in sorted(metrics.items()) if isinstance(v, int | float))


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
    spec = body.get("spec") or {}
    status: Obj = dict(body.get("status") or {})
    old_phase = status.get("phase")
    if job is None and old_phase in TERMINAL:
        return status  # the Job was deleted after it finished (ttlSecondsAfterFinished): keep the result
    jstatus: Obj = dict((job or {}).get("status") or {})
    true_conds = {c.get("type"): c for c in jstatus.get("conditions") or [] if c.get("status") == "True"}
    failed_pods = int(jstatus.get("failed") or 0)
    if job is None:
        phase, reason, message = "Pending", "Pending", "creating the training Job"
    elif "Complete" in true_conds:
        phase, reason, message = "Succeeded", "Succeeded", "training finished"
    elif "Failed" in true_conds:
        cond = true_conds["Failed"]
        phase, reason = "Failed", str(cond.get("reason") or "Failed")
        message = str(cond.get("message") or "the training Job failed")
    elif (job.get("spec") or {}).get("suspend"):
        phase, reason, message = (
            "Suspended",
            "Suspended",
            "runPolicy.suspend is true: set it to false to start",
        )
    elif int(jstatus.get("active") or 0) > 0:
        phase, reason, message = "Running", "Running", f"training in Job {job['metadata']['name']}"
    else:
        phase, reason, message = "Pending", "Pending", "waiting for the training pod to start"
    workers = _workers_summary(job) if job is not None else None
    if workers is not None and phase in ("Pending", "Running"):
        message = f"{message}; {workers}"

    ended = sorted((p for p in pods if _finished_at(p)), key=_finished_at)
    if phase == "Succeeded":
        winners = [
            p for p in _reporting_pods(ended) if (p.get("status") or {}).get("phase") == "Succeeded"
        ] or ended
        doc, _ = _termination(winners[-1]) if winners else (None, "")
        if doc:
            metrics = {
                k: float(v) for k, v in (doc.get("metrics") or {}).items() if isinstance(v, int | float)
            }
            status["bestMetrics"] = metrics
            status["progress"] = {
                "epoch": int(doc.get("epochs") or 0),
                "epochs": int(spec.get("epochs") or 0),
                "metrics": metrics,
            }
            if doc.get("resumedFromEpoch") is not None:
                status["resumedFromEpoch"] = int(doc["resumedFromEpoch"])
            if isinstance(doc.get("dataQuality"), dict):
                status["dataQuality"] = doc["dataQuality"]
            if isinstance(doc.get("trials"), list):
                # A Ray Tune search: its trials, the best one, and the refit of the best config.
                status.update(search_status(doc))
                status["progress"]["epoch"] = int(doc.get("epochs") or spec.get("epochs") or 0)
            runtime_uri = str(doc.get("artifactUri") or "")
            uri = runtime_uri if runtime_uri.startswith("s3://") else (artifact_uri or runtime_uri or None)
            if uri:
                status["artifactUri"] = uri
            summary = _metric_summary(metrics)
            message = f"trained {doc.get('epochs')} epochs" + (f"; {summary}" if summary else "")
            if "bestTrial" in status:
                message = search_message(doc) + (f"; refit: {summary}" if summary else "")
        if "artifactUri" not in status and artifact_uri:
            # No result message (a RayJob leaves none): the model is where the plan told it to go.
            status["artifactUri"] = artifact_uri
    elif phase == "Failed" and ended:
        doc, raw = _termination(ended[-1])
        if doc and isinstance(doc.get("dataQuality"), dict):
            status["dataQuality"] = doc["dataQuality"]  # a DataQualityFailed run says what is wrong
        if doc and doc.get("reason"):
            reason = str(doc["reason"])
            message = f"{doc.get('message') or ''} (Job: {message})".strip()
        elif raw:
            message = f"{message}; last pod said: {raw[-1500:]}"

    status["phase"] = phase
    status["observedGeneration"] = generation
    status["restarts"] = max(0, failed_pods - (1 if phase == "Failed" else 0))
    if jstatus.get("startTime"):
        status["startTime"] = jstatus["startTime"]
    if jstatus.get("completionTime"):
        status["completionTime"] = jstatus["completionTime"]
    elif phase == "Failed" and "completionTime" not in status:
        status["completionTime"] = format_time(now)
    conds = status.get("conditions") or []
    ready = "True" if phase == "Succeeded" else "False"
    conds = set_condition(conds, "Ready", ready, reason, message, generation=generation, now=now)
    progressing = "True" if phase in ("Pending", "Running") else "False"
    conds = set_condition(conds, "Progressing", progressing, reason, message, generation=generation, now=now)
    if any(c.get("type") == "Degraded" and c.get("status") == "True" for c in conds):
        conds = set_condition(
            conds, "Degraded", "False", "Reconciled", "reconciled again", generation=generation, now=now
        )
    status["conditions"] = conds
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
        pods: list[Obj] = []
        if job is not None and (
            (job.get("status") or {}).get("conditions") or (job.get("status") or {}).get("failed")
        ):
            pods = ctx.kube.list(PODS, namespace, label_selector=f"{JOB_NAME_LABEL}={jname}")
        uri = plan.artifact_uri if plan is not None else None
        if uri is None:
            try:
                uri = _plan(ctx, current).artifact_uri
            except SpecError:
                return None  # an invalid spec's status is written by the reconcile handler
        return training_status(current, job, pods, now=ctx.clock(), artifact_uri=uri)

    result = write_status(ctx.kube, TRAINING_JOBS, namespace, name, compute)
    if result is None:
        ctx.metrics.record_status(KIND, namespace, name, None)
        return
    phase = result.new.get("phase")
    ctx.metrics.record_status(KIND, namespace, name, result.new)
    if result.changed and result.old.get("phase") != phase:
        ready: Obj = next((c for c in result.new.get("conditions") or [] if c.get("type") == "Ready"), {})
        type_ = "Warning" if phase == "Failed" else "Normal"
        ctx.post_event(
            result.body, type_, str(ready.get("reason") or phase), str(ready.get("message") or phase)
        )
    if phase == "Succeeded" and not result.new.get("modelVersion"):
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
    if status.get("phase") != "Running" or (spec.get("distributed") or {}).get("backend") == "ray":
        return None  # a RayJob's driver runs in KubeRay's pods: its progress is on the Ray dashboard
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    pods = ctx.kube.list(PODS, namespace, label_selector=f"{JOB_NAME_LABEL}={job_name(name)}")
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
        if now.get("phase") != "Running" or now.get("progress") == progress:
            return None
        return {**now, "progress": progress}

    result = write_status(ctx.kube, TRAINING_JOBS, namespace, name, compute)
    if result is None or not result.changed:
        return None
    ctx.metrics.record_status(KIND, namespace, name, result.new)
    return progress


# --- success path: the ModelVersion of the trained model ------------------------------------


def _result_message(ctx: HandlerContext, namespace: str, name: str) -> Obj | None:
    """The termination message of the pod that succeeded, while the Job's pods still exist."""
    jname = job_name(name)
    pods = ctx.kube.list(PODS, namespace, label_selector=f"{JOB_NAME_LABEL}={jname}")
    won = sorted(
        (
            p
            for p in _reporting_pods(pods)
            if (p.get("status") or {}).get("phase") == "Succeeded" and _finished_at(p)
        ),
        key=_finished_at,
    )
    return _termination(won[-1])[0] if won else None


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


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
        finished=_parse_time(status.get("completionTime")) or ctx.clock(),
        image=_plan(ctx, body).image,
        result=_result_message(ctx, ns, name),
    )
    mv_name = manifest["metadata"]["name"]
    existing = ctx.kube.get(MODEL_VERSIONS, mv_name, ns)
    if existing is None:
        try:
            ctx.kube.create(MODEL_VERSIONS, manifest, ns)
        except KubeApiError as exc:
            if not exc.conflict:
                raise
            existing = ctx.kube.get(MODEL_VERSIONS, mv_name, ns)
        else:
            ctx.metrics.children.labels(kind=KIND, child="ModelVersion").inc()
            ctx.post_event(
                body,
                "Normal",
                "ModelVersionCreated",
                f"ModelVersion {mv_name} ({manifest['spec']['modelName']} "
                f"{manifest['spec']['version']}) holds the trained model",
            )
    if existing is not None:
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
        guarded(ctx, TRAINING_JOBS, body, retry, lambda: reconcile(ctx, body), invalid_phase="Failed")

    kopf.on.resume(GROUP, VERSION, plural, registry=registry, id="reconcile")(on_trainingjob)
    kopf.on.create(GROUP, VERSION, plural, registry=registry, id="reconcile")(on_trainingjob)
    kopf.on.update(GROUP, VERSION, plural, registry=registry, id="reconcile", field="spec")(on_trainingjob)

    def on_job_event(body: Any, type: str | None, logger: Any, **_: Any) -> None:
        meta = body.get("metadata") or {}
        owner = next((r for r in meta.get("ownerReferences") or [] if r.get("kind") == KIND), None)
        if owner is None:
            return
        try:
            sync_status(ctx, meta["namespace"], owner["name"])
        except Exception as exc:  # the next Job event or the owner's own reconcile catches up
            logger.warning(f"status of TrainingJob {owner['name']} not updated from Job event {type}: {exc}")

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
        when=lambda status, **_: (status or {}).get("phase") == "Running",
    )(on_progress_tick)

    kopf.on.event(
        "batch",
        "v1",
        "jobs",
        registry=registry,
        id="trainingjob-job-events",
        labels={MANAGED_BY_LABEL: MANAGED_BY, KIND_LABEL: KIND},
    )(on_job_event)
    register_rayjob_events(registry, lambda namespace, owner: sync_status(ctx, namespace, owner))
