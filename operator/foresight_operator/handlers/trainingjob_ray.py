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

from foresight.api.trainingjob import TRAINING_JOB, TrainingJobSpec, TrainingPhase, TrainingReason, Trial
from foresight.contract.training import TrainingResult, TrialResult
from foresight.kube import CRDS, ResourceRef

from ..builders.rayjob import RAYJOB_CRD, build_rayjob, rayjob_phase
from ..builders.training import TrainingPlan
from ..reconcile import WaitError, child_name
from ..reconcile.updates import suspend_update
from .children import make_child, watch_children
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
KIND = TRAINING_JOB.kind
RAYJOBS = ResourceRef("ray.io/v1", "rayjobs", "RayJob")
RAY_CRD_RETRY_S = 60.0
"""How often a TrainingJob waiting for KubeRay looks again (one event per look, never a storm)."""


def rayjob_name(name: str) -> str:
    return child_name(name, "ray")


def reconcile_rayjob(
    ctx: HandlerContext, body: Any, plan: TrainingPlan, spec: TrainingJobSpec, labels: Mapping[str, str]
) -> None:
    """Make the RayJob of one TrainingJob exist (or say that KubeRay is missing)."""
    meta = body["metadata"]
    ns, name = meta["namespace"], meta["name"]
    if ctx.kube.get(CRDS, RAYJOB_CRD, None) is None:
        raise WaitError(
            f"distributed.backend ray needs KubeRay, and the CustomResourceDefinition {RAYJOB_CRD} is not "
            "installed in this cluster: install the KubeRay operator (helm install kuberay-operator "
            "kuberay/kuberay-operator), or set distributed.backend to none (one pod, local Ray for a "
            "search) or torch (DDP workers); the TrainingJob starts once the CRD exists",
            reason=TrainingReason.RAY_NOT_INSTALLED,
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
    # As for a Job: the cluster spec is fixed once KubeRay made it; suspend is the knob that moves.
    make_child(
        ctx, body, RAYJOBS, rayjob, update=suspend_update,
        announce=f"RayJob {rayjob['metadata']['name']} runs the training on a Ray cluster of "
        f"{spec.distributed.workers} worker(s)",
    )  # fmt: skip


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
    if phase == TrainingPhase.SUCCEEDED:
        status["conditions"] = [{"type": "Complete", "status": "True", "reason": reason, "message": message}]
    elif phase == TrainingPhase.FAILED:
        status["conditions"] = [{"type": "Failed", "status": "True", "reason": reason, "message": message}]
    elif phase == TrainingPhase.RUNNING:
        status["active"] = 1
    if rstatus.get("startTime"):
        status["startTime"] = rstatus["startTime"]
    if phase in (TrainingPhase.SUCCEEDED, TrainingPhase.FAILED) and rstatus.get("endTime"):
        status["completionTime"] = rstatus["endTime"]
    return {
        "metadata": dict(rayjob.get("metadata") or {}),
        "spec": {"suspend": phase == TrainingPhase.SUSPENDED},
        "status": status,
    }


def _trial(trial: TrialResult) -> Obj:
    return Trial(
        id=trial.id,
        # status.trials[].config is string -> string, as spec.hyperparameters is.
        config={str(k): str(v) for k, v in trial.config.items()},
        metric=trial.metric,
        status=trial.status,
    ).to_wire()


def search_status(result: TrainingResult) -> Obj:
    """``trials`` and ``bestTrial`` of the status from a search's result (pure)."""
    out: Obj = {"trials": [_trial(t) for t in result.trials or []]}
    if result.best_trial is not None:
        out["bestTrial"] = _trial(result.best_trial)
    return out


def search_message(result: TrainingResult) -> str:
    """``"4 trials (3 finished, 1 stopped early); best val_loss=0.0123 with hidden=16, lr=0.01"``."""
    trials = result.trials or []
    states = [t.status for t in trials]
    parts = [
        f"{states.count('TERMINATED')} finished",
        f"{states.count('STOPPED')} stopped early",
        f"{states.count('ERROR')} failed",
    ]
    counts = ", ".join(p for p in parts if not p.startswith("0 "))
    best = result.best_trial or TrialResult()
    config = ", ".join(f"{k}={v}" for k, v in sorted(best.config.items()))
    shown = f"{best.metric:.4g}" if best.metric is not None else "?"
    return f"{len(trials)} trials ({counts}); best {result.metric or 'metric'}={shown} with {config}"


def register_rayjob_events(registry: Any, on_owner_change: Callable[[str, str], None]) -> None:
    """Watch the RayJobs we own and call ``on_owner_change(namespace, trainingjob)`` on every change.

    kopf starts this watch only when the ``rayjobs.ray.io`` CRD exists (and when it appears later).
    """
    watch_children(
        registry,
        RAYJOBS,
        owner_kind=KIND,
        handler_id="trainingjob-rayjob-events",
        on_change=lambda namespace, owner, _type, _body: on_owner_change(namespace, owner),
    )
