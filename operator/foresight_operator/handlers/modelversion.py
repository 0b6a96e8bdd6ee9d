"""ModelVersion: a verify / optimise Job per verify key, status from its termination message, and
the one-Production-version-per-model rule.

Handlers (thin): create / resume / spec update run :func:`reconcile` (validate, plan, make the
ConfigMap and Job, sync status); events of the Jobs we own run :func:`sync_status`; every event of
any ModelVersion runs :func:`sync_production` for its ``modelName``.

The Production rule (the operator never writes specs; users declare ``spec.stage``): within a
namespace, a ModelVersion has ``status.production: true`` exactly when it is the *only* version
of its ``modelName`` whose spec says ``stage: Production`` *and* its artifact is verified. When
two or more declare Production, none is production: each gets ``Conflict=True`` (reason
``ProductionConflict``, naming the others) until a user archives all but one. No tie-break by age
or name: guessing which of two declared versions the user meant could serve the wrong model, and
the conflict is visible in ``kubectl get`` and events. ``foresight models promote`` archives the
old version before promoting the new one, so it never causes a conflict.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import yaml
from foresight.api.meta import GROUP, VERSION
from foresight.api.modelversion import MODEL_VERSION, ModelVersionReason, ModelVersionSpec

from ..builders import build_configmap, build_job
from ..builders.modelversion import CONFIG_FILE, VerifyPlan, plan_verify, verify_key, verify_name
from ..kube import CONFIGMAPS, JOBS, PODS, SECRETS
from ..reconcile import (
    KIND_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    SpecError,
    WaitError,
    ensure_child,
    find_condition,
    owner_labels,
    set_condition,
    write_status,
)
from .common import guarded, kind_ref, parse_spec
from .context import HandlerContext

__all__ = [
    "MODEL_VERSIONS",
    "production_updates",
    "reconcile",
    "register_modelversion",
    "sync_production",
    "sync_status",
    "verify_status",
]

log = logging.getLogger(__name__)
Obj = dict[str, Any]
KIND = "ModelVersion"
MODEL_VERSIONS = kind_ref(KIND, MODEL_VERSION.plural)
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
VERIFY_KEY_LABEL = "foresight.dev/verify-key"
RESULT_FIELDS = (
    "verified",
    "checksum",
    "sizeBytes",
    "onnx",
    "int8",
    "parityMaxAbsDiff",
    "sparsity",
    "latency",
    "distillation",
    "verifiedTime",
)
CONFLICT = "Conflict"


def _plan(ctx: HandlerContext, body: Mapping[str, Any]) -> VerifyPlan:
    meta = body["metadata"]
    spec = parse_spec(ModelVersionSpec, body.get("spec"))
    return plan_verify(
        spec,
        namespace=meta["namespace"],
        name=meta["name"],
        generation=meta.get("generation"),
        default_image=ctx.settings.runtime_image,
    )


def reconcile(ctx: HandlerContext, body: Any) -> None:
    """Make the verify ConfigMap and Job of the current spec exist, then sync status and Production."""
    import kopf

    meta = body["metadata"]
    ns, name, uid = meta["namespace"], meta["name"], meta["uid"]
    plan = _plan(ctx, body)
    for secret in plan.secrets:
        if ctx.kube.get(SECRETS, secret, ns) is None:
            raise WaitError(
                f"Secret {ns}/{secret} not found: create it with keys accessKey and secretKey (S3 "
                "credentials); verification starts once it exists",
                reason="SecretNotFound",
                delay=max(ctx.settings.retry_delay, 5.0),
            )
    labels = {**owner_labels(KIND, name), VERIFY_KEY_LABEL: plan.key}
    cm = build_configmap(
        name=plan.name, namespace=ns, labels=labels, data={CONFIG_FILE: yaml.safe_dump(plan.config)}
    )
    kopf.adopt(cm, owner=body)
    ensure_child(ctx.kube, CONFIGMAPS, cm, owner_uid=uid)
    spec = parse_spec(ModelVersionSpec, body.get("spec"))
    job = build_job(
        name=plan.name,
        namespace=ns,
        labels=labels,
        image=plan.image,
        pull_policy=plan.pull_policy,
        command=plan.command,
        env=plan.env,
        secret_env=plan.secret_env,
        resources=spec.resources,
        volumes=plan.volumes,
        working_dir=plan.working_dir,
    )
    # Retries are for an unavailable store (the runtime exits 75); verdicts exit 0.
    job["spec"]["backoffLimit"] = 2
    kopf.adopt(job, owner=body)
    _, created = ensure_child(ctx.kube, JOBS, job, owner_uid=uid)
    if created:
        ctx.metrics.children.labels(kind=KIND, child="Job").inc()
        ctx.post_event(body, "Normal", "VerifyJobCreated", f"Job {plan.name} verifies {spec.artifact.uri}")
    sync_status(ctx, ns, name)
    sync_production(ctx, ns, spec.model_name)


def _termination(pod: Mapping[str, Any]) -> Obj | None:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        term = (cs.get("state") or {}).get("terminated")
        if term:
            raw = str(term.get("message") or "")
            try:
                doc = json.loads(raw) if raw.strip().startswith("{") else None
            except ValueError:
                return {"reason": "VerifyFailed", "message": raw[-1500:]}
            if isinstance(doc, dict):
                return doc
            return {"reason": "VerifyFailed", "message": raw[-1500:]} if raw else None
    return None


def _finished_at(pod: Mapping[str, Any]) -> str:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        term = (cs.get("state") or {}).get("terminated") or {}
        if term.get("finishedAt"):
            return str(term["finishedAt"])
    return ""


def _result_fields(doc: Mapping[str, Any]) -> Obj:
    out: Obj = {"verified": bool(doc.get("verified"))}
    for key in RESULT_FIELDS[1:]:
        if doc.get(key) is not None:
            out[key] = doc[key]
    return out


def verify_status(
    body: Mapping[str, Any],
    job: Mapping[str, Any] | None,
    pods: Sequence[Mapping[str, Any]],
    *,
    now: datetime,
) -> Obj:
    """The verification part of a ModelVersion's status from its current Job and pods (pure).

    While a Job runs, earlier results stay (a version being re-optimised keeps serving); a
    finished Job's termination message replaces every result field.
    """
    meta = body["metadata"]
    generation = meta.get("generation")
    status: Obj = dict(body.get("status") or {})
    jstatus: Obj = dict((job or {}).get("status") or {})
    done = {c.get("type"): c for c in jstatus.get("conditions") or [] if c.get("status") == "True"}
    ended = sorted((p for p in pods if _finished_at(p)), key=_finished_at)
    doc: Obj | None = None
    if job is None:
        phase, reason, message = "Verifying", ModelVersionReason.VERIFYING.value, "creating the verify Job"
    elif "Complete" in done or "Failed" in done:
        winners = [p for p in ended if (p.get("status") or {}).get("phase") == "Succeeded"] or ended
        doc = _termination(winners[-1]) if winners else None
        if doc is None:
            cond = done.get("Failed") or done["Complete"]
            doc = {
                "reason": str(cond.get("reason") or "VerifyFailed"),
                "message": str(cond.get("message") or "the verify Job ended without a result"),
            }
        reason = str(doc.get("reason") or "VerifyFailed")
        message = str(doc.get("message") or reason)
        if "Failed" in done and doc.get("retryable"):
            message += " (the verify Job used up its retries: fix the store, then delete the Job to retry)"
        phase = "Ready" if reason == ModelVersionReason.VERIFIED and doc.get("verified") else "Failed"
    elif int(jstatus.get("active") or 0) > 0:
        phase, reason = "Verifying", ModelVersionReason.VERIFYING.value
        message = f"Job {job['metadata']['name']} verifies the artifact"
    else:
        phase, reason = "Verifying", ModelVersionReason.VERIFYING.value
        message = "waiting for the verify pod to start"

    if doc is not None:
        for key in RESULT_FIELDS:
            status.pop(key, None)
        status.update(_result_fields(doc))
    status["phase"] = phase
    status["observedGeneration"] = generation
    conds = status.get("conditions") or []
    ready = "True" if phase == "Ready" else "False"
    conds = set_condition(conds, "Ready", ready, reason, message, generation=generation, now=now)
    progressing = "True" if phase == "Verifying" else "False"
    conds = set_condition(conds, "Progressing", progressing, reason, message, generation=generation, now=now)
    degraded = find_condition(conds, "Degraded")
    if degraded is not None and degraded.get("status") == "True":
        conds = set_condition(conds, "Degraded", "False", "Reconciled", "", generation=generation, now=now)
    status["conditions"] = conds
    return status


def sync_status(ctx: HandlerContext, namespace: str, name: str) -> None:
    """Recompute one ModelVersion's verification status from the Job of its current spec."""

    def compute(current: Obj) -> Obj | None:
        try:
            key = verify_key(parse_spec(ModelVersionSpec, current.get("spec")))
        except SpecError:
            return None  # an invalid spec's status is written by the reconcile handler
        jname = verify_name(name, key)
        job = ctx.kube.get(JOBS, jname, namespace)
        pods: list[Obj] = []
        if job is not None and (
            (job.get("status") or {}).get("conditions") or (job.get("status") or {}).get("failed")
        ):
            pods = ctx.kube.list(PODS, namespace, label_selector=f"{JOB_NAME_LABEL}={jname}")
        return verify_status(current, job, pods, now=ctx.clock())

    result = write_status(ctx.kube, MODEL_VERSIONS, namespace, name, compute)
    if result is None:
        ctx.metrics.record_status(KIND, namespace, name, None)
        return
    phase = result.new.get("phase")
    ctx.metrics.record_status(KIND, namespace, name, result.new)
    if result.changed and result.old.get("phase") != phase:
        ready: Obj = find_condition(result.new.get("conditions"), "Ready") or {}
        ctx.post_event(
            result.body,
            "Warning" if phase == "Failed" else "Normal",
            str(ready.get("reason") or phase),
            str(ready.get("message") or phase),
        )


def production_updates(versions: Sequence[Mapping[str, Any]], *, now: datetime) -> dict[str, Obj]:
    """For every version of one model: name -> its status with ``production`` and ``Conflict`` recomputed.

    Pure; see the module docstring for the rule. Versions whose status would not change are left out.
    """
    declared = sorted(
        str(v["metadata"]["name"]) for v in versions if (v.get("spec") or {}).get("stage") == "Production"
    )
    out: dict[str, Obj] = {}
    for v in versions:
        name = str(v["metadata"]["name"])
        generation = v["metadata"].get("generation")
        old: Obj = dict(v.get("status") or {})
        new = dict(old)
        conds = old.get("conditions") or []
        if name in declared and len(declared) > 1:
            others = ", ".join(n for n in declared if n != name)
            model = (v.get("spec") or {}).get("modelName")
            message = (
                f"{name} and {others} all declare stage Production for model {model}; exactly one may: set "
                "stage Archived on all but one (or run `foresight models promote NAME`)"
            )
            new["production"] = False
            conds = set_condition(
                conds,
                CONFLICT,
                "True",
                ModelVersionReason.PRODUCTION_CONFLICT.value,
                message,
                generation=generation,
                now=now,
            )
        else:
            serving = name in declared and bool(old.get("verified"))
            if serving or "production" in old:  # false is the default: no write just to say so
                new["production"] = serving
            if name in declared or find_condition(conds, CONFLICT) is not None:
                msg = (
                    "the only Production version of its model"
                    if name in declared
                    else "not declared Production"
                )
                if name in declared and not serving:
                    msg += "; not serving as Production until its artifact is verified"
                conds = set_condition(
                    conds, CONFLICT, "False", "NoConflict", msg, generation=generation, now=now
                )
        new["conditions"] = conds
        if new != old:
            out[name] = new
    return out


def sync_production(ctx: HandlerContext, namespace: str, model_name: str) -> None:
    """Apply :func:`production_updates` to every version of ``model_name`` in ``namespace``."""
    versions = [
        v
        for v in ctx.kube.list(MODEL_VERSIONS, namespace)
        if (v.get("spec") or {}).get("modelName") == model_name and not v["metadata"].get("deletionTimestamp")
    ]
    for name in production_updates(versions, now=ctx.clock()):

        def compute(current: Obj) -> Obj | None:
            # Recomputed from a fresh read of the whole group, so concurrent writers converge.
            fresh = [current if v["metadata"]["name"] == current["metadata"]["name"] else v for v in versions]
            updates = production_updates(fresh, now=ctx.clock())
            return updates.get(current["metadata"]["name"])

        result = write_status(ctx.kube, MODEL_VERSIONS, namespace, name, compute)
        if result is None or not result.changed:
            continue
        was, now_ = bool(result.old.get("production")), bool(result.new.get("production"))
        if was != now_:
            what = "is now" if now_ else "is no longer"
            ctx.post_event(
                result.body, "Normal", "Production", f"{name} {what} the Production version of {model_name}"
            )
        conflict = find_condition(result.new.get("conditions"), CONFLICT) or {}
        old_conflict = find_condition(result.old.get("conditions"), CONFLICT) or {}
        if conflict.get("status") == "True" and old_conflict.get("status") != "True":
            ctx.post_event(result.body, "Warning", "ProductionConflict", str(conflict.get("message")))


def register_modelversion(registry: Any, ctx: HandlerContext) -> None:
    """Register the ModelVersion handlers into ``registry`` (a ``kopf.OperatorRegistry``)."""
    import kopf

    plural = MODEL_VERSION.plural

    def on_modelversion(body: Any, retry: int, **_: Any) -> None:
        guarded(ctx, MODEL_VERSIONS, body, retry, lambda: reconcile(ctx, body), invalid_phase="Failed")

    for decorator in (
        kopf.on.resume(GROUP, VERSION, plural, registry=registry, id="verify"),
        kopf.on.create(GROUP, VERSION, plural, registry=registry, id="verify"),
        kopf.on.update(GROUP, VERSION, plural, registry=registry, id="verify", field="spec"),
    ):
        decorator(on_modelversion)

    def on_any_modelversion(body: Any, logger: Any, **_: Any) -> None:
        meta = body.get("metadata") or {}
        model = (body.get("spec") or {}).get("modelName")
        if not model or not meta.get("namespace"):
            return
        try:
            sync_production(ctx, meta["namespace"], str(model))
        except Exception as exc:  # the next event of any version of this model catches up
            logger.warning(f"Production of model {model} not recomputed: {exc}")

    kopf.on.event(GROUP, VERSION, plural, registry=registry, id="production")(on_any_modelversion)

    def on_job_event(body: Any, type: str | None, logger: Any, **_: Any) -> None:
        meta = body.get("metadata") or {}
        owner = next((r for r in meta.get("ownerReferences") or [] if r.get("kind") == KIND), None)
        if owner is None:
            return
        try:
            sync_status(ctx, meta["namespace"], owner["name"])
        except Exception as exc:  # the next Job event or the owner's own reconcile catches up
            logger.warning(f"status of ModelVersion {owner['name']} not updated from Job event {type}: {exc}")

    kopf.on.event(
        "batch",
        "v1",
        "jobs",
        registry=registry,
        id="modelversion-job-events",
        labels={MANAGED_BY_LABEL: MANAGED_BY, KIND_LABEL: KIND},
    )(on_job_event)
