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

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import yaml
from foresight.api.meta import GROUP, VERSION, ConditionType, Reason
from foresight.api.modelversion import (
    MODEL_VERSION,
    ModelVersionPhase,
    ModelVersionReason,
    ModelVersionSpec,
    Stage,
)
from foresight.contract.modelversion import STATUS_FIELDS, VerifyResult
from foresight.kube import CONFIGMAPS, JOBS

from ..builders import build_configmap, build_job
from ..builders.modelversion import CONFIG_FILE, VerifyPlan, plan_verify, verify_key, verify_name
from ..reconcile import (
    MODEL_VERSIONS,
    SpecError,
    find_condition,
    job_pods,
    owner_labels,
    pods_worth_reading,
    set_condition,
    true_condition,
    write_status,
)
from ..reconcile.pods import ended, termination_message
from .children import make_child, watch_children
from .common import guarded, on_spec, parse_spec, wait_for_secrets, write_and_report_status
from .context import HandlerContext

__all__ = [
    "production_updates",
    "reconcile",
    "register_modelversion",
    "sync_production",
    "sync_status",
    "verify_status",
]

log = logging.getLogger(__name__)
Obj = dict[str, Any]
KIND = MODEL_VERSION.kind
VERIFY_KEY_LABEL = "foresight.dev/verify-key"
CONFLICT = "Conflict"
"""The condition type of the one-Production-version rule."""
LAST_WORDS = 1500
"""Characters of a crashed verify pod's log tail quoted in the condition message."""
VERIFY_BACKOFF_LIMIT = 2
"""Retries of the verify Job: only for an unavailable store (the runtime exits ``EXIT_RETRY``);
verdicts exit 0."""


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
    meta = body["metadata"]
    ns, name = meta["namespace"], meta["name"]
    plan = _plan(ctx, body)
    wait_for_secrets(ctx, ns, plan.secret_env.values(), waiting="verification starts")
    labels = {**owner_labels(KIND, name), VERIFY_KEY_LABEL: plan.key}
    cm = build_configmap(
        name=plan.name, namespace=ns, labels=labels, data={CONFIG_FILE: yaml.safe_dump(plan.config)}
    )
    make_child(ctx, body, CONFIGMAPS, cm)
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
    job["spec"]["backoffLimit"] = VERIFY_BACKOFF_LIMIT
    make_child(
        ctx,
        body,
        JOBS,
        job,
        announce=f"Job {plan.name} verifies {spec.artifact.uri}",
        reason="VerifyJobCreated",
    )
    sync_status(ctx, ns, name)
    sync_production(ctx, ns, spec.model_name)


def _verdict(job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> VerifyResult:
    """The verdict of a finished verify Job: the result its pod left, or why there is none."""
    last = ended(pods)
    winners = [p for p in last if (p.get("status") or {}).get("phase") == "Succeeded"] or last
    raw = termination_message(winners[-1]) if winners else ""
    result = VerifyResult.from_termination_message(raw)
    if result is not None:
        return result
    if raw:  # a crash before the runtime wrote its verdict: the log tail says why
        return VerifyResult(reason=ModelVersionReason.VERIFY_FAILED, message=raw[-LAST_WORDS:])
    cond = true_condition(job, "Failed") or true_condition(job, "Complete") or {}
    return VerifyResult(
        reason=str(cond.get("reason") or ModelVersionReason.VERIFY_FAILED),
        message=str(cond.get("message") or "the verify Job ended without a result"),
    )


def verify_status(
    body: Mapping[str, Any],
    job: Mapping[str, Any] | None,
    pods: Sequence[Mapping[str, Any]],
    *,
    now: datetime,
) -> Obj:
    """The verification part of a ModelVersion's status from its current Job and pods (pure).

    While a Job runs, earlier results stay (a version being re-optimised keeps serving); a
    finished Job's verdict replaces every result field.
    """
    generation = body["metadata"].get("generation")
    status: Obj = dict(body.get("status") or {})
    finished = job is not None and (true_condition(job, "Complete") or true_condition(job, "Failed"))
    reason: str
    if job is None:
        phase, reason, message = (
            ModelVersionPhase.VERIFYING,
            ModelVersionReason.VERIFYING,
            "creating the verify Job",
        )
    elif finished:
        verdict = _verdict(job, pods)
        reason = verdict.reason or ModelVersionReason.VERIFY_FAILED
        message = verdict.message or reason
        if true_condition(job, "Failed") is not None and verdict.retryable:
            message += " (the verify Job used up its retries: fix the store, then delete the Job to retry)"
        ok = reason == ModelVersionReason.VERIFIED and verdict.verified
        phase = ModelVersionPhase.READY if ok else ModelVersionPhase.FAILED
        wire = verdict.to_wire()
        for key in STATUS_FIELDS:
            status.pop(key, None)
        status.update({key: wire[key] for key in STATUS_FIELDS if wire.get(key) is not None})
        status["verified"] = verdict.verified
    elif int((job.get("status") or {}).get("active") or 0) > 0:
        phase, reason = ModelVersionPhase.VERIFYING, ModelVersionReason.VERIFYING
        message = f"Job {job['metadata']['name']} verifies the artifact"
    else:
        phase, reason = ModelVersionPhase.VERIFYING, ModelVersionReason.VERIFYING
        message = "waiting for the verify pod to start"
    status["phase"] = phase
    status["observedGeneration"] = generation
    conds = status.get("conditions") or []
    ready = "True" if phase == ModelVersionPhase.READY else "False"
    conds = set_condition(conds, ConditionType.READY, ready, reason, message, generation=generation, now=now)
    progressing = "True" if phase == ModelVersionPhase.VERIFYING else "False"
    conds = set_condition(
        conds, ConditionType.PROGRESSING, progressing, reason, message, generation=generation, now=now
    )
    degraded = find_condition(conds, ConditionType.DEGRADED)
    if degraded is not None and degraded.get("status") == "True":
        conds = set_condition(
            conds, ConditionType.DEGRADED, "False", Reason.RECONCILED, "", generation=generation, now=now
        )
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
        pods = job_pods(ctx.kube, namespace, jname) if pods_worth_reading(job) else []
        return verify_status(current, job, pods, now=ctx.clock())

    write_and_report_status(
        ctx, MODEL_VERSIONS, namespace, name, compute, warn_phases=(ModelVersionPhase.FAILED,)
    )


def production_updates(versions: Sequence[Mapping[str, Any]], *, now: datetime) -> dict[str, Obj]:
    """For every version of one model: name -> its status with ``production`` and ``Conflict`` recomputed.

    Pure; see the module docstring for the rule. Versions whose status would not change are left out.
    """
    declared = sorted(
        str(v["metadata"]["name"]) for v in versions if (v.get("spec") or {}).get("stage") == Stage.PRODUCTION
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
                ModelVersionReason.PRODUCTION_CONFLICT,
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
                    conds,
                    CONFLICT,
                    "False",
                    ModelVersionReason.NO_CONFLICT,
                    msg,
                    generation=generation,
                    now=now,
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
            ctx.post_event(
                result.body, "Warning", ModelVersionReason.PRODUCTION_CONFLICT, str(conflict.get("message"))
            )


def register_modelversion(registry: Any, ctx: HandlerContext) -> None:
    """Register the ModelVersion handlers into ``registry`` (a ``kopf.OperatorRegistry``)."""
    import kopf

    plural = MODEL_VERSION.plural

    def on_modelversion(body: Any, retry: int, **_: Any) -> None:
        guarded(
            ctx,
            MODEL_VERSIONS,
            body,
            retry,
            lambda: reconcile(ctx, body),
            invalid_phase=ModelVersionPhase.FAILED,
        )

    on_spec(registry, plural, "verify", on_modelversion)

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

    watch_children(
        registry,
        JOBS,
        owner_kind=KIND,
        handler_id="modelversion-job-events",
        on_change=lambda namespace, owner, _type, _job: sync_status(ctx, namespace, owner),
    )
