"""TrainingJob, ``distributed.backend: ray``: a KubeRay RayJob instead of a Job, status from its status.

Called from :mod:`.trainingjob` (which owns the TrainingJob handlers): :func:`reconcile_rayjob`
makes the RayJob once the ``rayjobs.ray.io`` CRD exists (before that, a ``KubeRayNotInstalled``
condition, retried slowly: installing KubeRay is a cluster admin's job, not a matter of seconds),
and :func:`rayjob_as_job` presents the RayJob's status as the Job status
:func:`~.trainingjob.training_status` already understands, so phases, conditions and events are
the same for every backend.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from foresight.api.trainingjob import TrainingJobSpec, TrainingReason, Trial

from ..builders.rayjob import RAYJOB_CRD, build_rayjob, rayjob_phase
from ..builders.training import TrainingPlan
from ..kube import ResourceRef
from ..reconcile import KIND_LABEL, MANAGED_BY, MANAGED_BY_LABEL, WaitError, child_name, ensure_child
from .context import HandlerContext

__all__ = [
    "CRDS",
    "RAYJOBS",
    "RAY_CRD_RETRY_S",
    "rayjob_as_job",
    "rayjob_name",
    "reconcile_rayjob",
    "register_rayjob_events",
    "search_message",
    "search_status",
]

Obj = dict[str, Any]
KIND = "TrainingJob"
RAYJOBS = ResourceRef("ray.io/v1", "rayjobs", "RayJob")
CRDS = ResourceRef("apiextensions.k8s.io/v1", "customresourcedefinitions", "CustomResourceDefinition")
RAY_CRD_RETRY_S = 60.0
"""How often a TrainingJob waiting for KubeRay looks again (one event per look, never a storm)."""


def rayjob_name(name: str) -> str:
    return child_name(name, "ray")


def _rayjob_update(desired: Obj, existing: Obj) -> Obj | None:
    # As for a Job: the cluster spec is fixed once KubeRay made it; suspend is the knob that moves.
    want = bool(desired["spec"].get("suspend"))
    return {"spec": {"suspend": want}} if bool((existing.get("spec") or {}).get("suspend")) != want else None


def reconcile_rayjob(
    ctx: HandlerContext, body: Any, plan: TrainingPlan, spec: TrainingJobSpec, labels: Mapping[str, str]
) -> None:
    """Make the RayJob of one TrainingJob exist (or say that KubeRay is missing)."""
    import kopf

    meta = body["metadata"]
    ns, name = meta["namespace"], meta["name"]
    if ctx.kube.get(CRDS, RAYJOB_CRD, None) is None:
        raise WaitError(
            f"distributed.backend ray needs KubeRay, and the CustomResourceDefinition {RAYJOB_CRD} is not "
            "installed in this cluster: install the KubeRay operator (helm install kuberay-operator "
            "kuberay/kuberay-operator), or set distributed.backend to none (one pod, local Ray for a "
            "search) or torch (DDP workers); the TrainingJob starts once the CRD exists",
            reason=TrainingReason.RAY_NOT_INSTALLED.value,
            delay=max(ctx.settings.retry_delay, RAY_CRD_RETRY_S),
        )
    rayjob = build_rayjob(
        plan,
        name=rayjob_name(name),
        namespace=ns,
        labels=labels,
        workers=spec.distributed.workers,
        resources=spec.resources,
        placement=spec.placement,
        run_policy=spec.run_policy,
    )
    kopf.adopt(rayjob, owner=body)
    _, created = ensure_child(ctx.kube, RAYJOBS, rayjob, owner_uid=meta["uid"], update=_rayjob_update)
    if created:
        ctx.metrics.children.labels(kind=KIND, child="RayJob").inc()
        ctx.post_event(
            body,
            "Normal",
            "RayJobCreated",
            f"RayJob {rayjob['metadata']['name']} runs the training on a Ray cluster of "
            f"{spec.distributed.workers} worker(s)",
        )


def rayjob_as_job(rayjob: Mapping[str, Any] | None) -> Obj | None:
    """The RayJob's state written as a batch/v1 Job's (pure), for ``training_status``.

    Succeeded -> a ``Complete`` condition, Failed -> a ``Failed`` condition with the reason and
    message, Suspended -> ``spec.suspend``, Running -> one active pod; start and end times kept.
    """
    if rayjob is None:
        return None
    phase, reason, message = rayjob_phase(rayjob)
    rstatus: Mapping[str, Any] = rayjob.get("status") or {}
    status: Obj = {}
    if phase == "Succeeded":
        status["conditions"] = [{"type": "Complete", "status": "True", "reason": reason, "message": message}]
    elif phase == "Failed":
        status["conditions"] = [{"type": "Failed", "status": "True", "reason": reason, "message": message}]
    elif phase == "Running":
        status["active"] = 1
    if rstatus.get("startTime"):
        status["startTime"] = rstatus["startTime"]
    if phase in ("Succeeded", "Failed") and rstatus.get("endTime"):
        status["completionTime"] = rstatus["endTime"]
    return {
        "metadata": dict(rayjob.get("metadata") or {}),
        "spec": {"suspend": phase == "Suspended"},
        "status": status,
    }


def _trial(doc: Mapping[str, Any]) -> Obj:
    metric = doc.get("metric")
    return Trial(
        id=str(doc.get("id") or ""),
        # status.trials[].config is string -> string, as spec.hyperparameters is.
        config={str(k): str(v) for k, v in (doc.get("config") or {}).items()},
        metric=float(metric) if isinstance(metric, int | float) else None,
        status=str(doc.get("status") or ""),
    ).to_wire()


def search_status(result: Mapping[str, Any]) -> Obj:
    """``trials`` and ``bestTrial`` of the status from a search's termination message (pure)."""
    out: Obj = {"trials": [_trial(t) for t in result.get("trials") or [] if isinstance(t, Mapping)]}
    best = result.get("bestTrial")
    if isinstance(best, Mapping):
        out["bestTrial"] = _trial(best)
    return out


def search_message(result: Mapping[str, Any]) -> str:
    """``"4 trials (3 finished, 1 stopped early); best val_loss=0.0123 with hidden=16, lr=0.01"``."""
    trials = [t for t in result.get("trials") or [] if isinstance(t, Mapping)]
    states = [str(t.get("status") or "") for t in trials]
    parts = [
        f"{states.count('TERMINATED')} finished",
        f"{states.count('STOPPED')} stopped early",
        f"{states.count('ERROR')} failed",
    ]
    counts = ", ".join(p for p in parts if not p.startswith("0 "))
    best_raw = result.get("bestTrial")
    best: Mapping[str, Any] = best_raw if isinstance(best_raw, Mapping) else {}
    config = ", ".join(f"{k}={v}" for k, v in sorted((best.get("config") or {}).items()))
    value = best.get("metric")
    shown = f"{float(value):.4g}" if isinstance(value, int | float) else "?"
    return f"{len(trials)} trials ({counts}); best {result.get('metric', 'metric')}={shown} with {config}"


def register_rayjob_events(registry: Any, on_owner_change: Callable[[str, str], None]) -> None:
    """Watch the RayJobs we own and call ``on_owner_change(namespace, trainingjob)`` on every change.

    kopf starts this watch only when the ``rayjobs.ray.io`` CRD exists (and when it appears later).
    """
    import kopf

    def on_rayjob_event(body: Any, type: str | None, logger: Any, **_: Any) -> None:
        meta = body.get("metadata") or {}
        owner = next((r for r in meta.get("ownerReferences") or [] if r.get("kind") == KIND), None)
        if owner is None:
            return
        try:
            on_owner_change(meta["namespace"], owner["name"])
        except Exception as exc:  # the next RayJob event or the owner's own reconcile catches up
            logger.warning(
                f"status of TrainingJob {owner['name']} not updated from RayJob event {type}: {exc}"
            )

    kopf.on.event(
        "ray.io",
        "v1",
        "rayjobs",
        registry=registry,
        id="trainingjob-rayjob-events",
        labels={MANAGED_BY_LABEL: MANAGED_BY, KIND_LABEL: KIND},
    )(on_rayjob_event)
