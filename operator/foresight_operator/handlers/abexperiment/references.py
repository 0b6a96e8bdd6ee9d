"""What an ABExperiment needs before its clock starts: the service, the models, the routing, the pods.

Each check raises a :class:`~foresight_operator.reconcile.WaitError` whose reason is a condition
reason of :class:`~foresight.api.abexperiment.ExperimentReason` and whose message says what to fix.
Until they all pass, nothing is routed to a candidate: the service keeps serving its own model.

- :func:`require_service`: the ClassifierService exists;
- :func:`require_models`: every variant's ModelVersion is Ready with an ONNX file on a PVC;
- :func:`require_routing_owner`: no other ABExperiment routes the same service (the one the
  routing ConfigMap names, while it lives, or else the oldest);
- :func:`variants_loaded`: the service's pods run a config with every variant (rolled out).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from foresight.api.abexperiment import ABExperimentSpec, ExperimentReason
from foresight.contract.experiment import routing_configmap_name
from foresight.kube import CONFIGMAPS, DEPLOYMENTS

from ...builders.abexperiment import read_routing, routing_owner
from ...builders.classifierservice import VARIANTS_ANNOTATION, classifier_names, variants_annotation
from ...reconcile import AB_EXPERIMENTS, CLASSIFIER_SERVICES, WaitError
from ..context import HandlerContext
from ..onnx_artifacts import resolve_onnx_artifact

__all__ = [
    "require_models",
    "require_routing_owner",
    "require_service",
    "variants_annotation",
    "variants_loaded",
]

Obj = dict[str, Any]


def require_service(ctx: HandlerContext, namespace: str, spec: ABExperimentSpec) -> Obj:
    service = ctx.kube.get(CLASSIFIER_SERVICES, spec.service, namespace)
    if service is None:
        raise WaitError(
            f"ClassifierService {namespace}/{spec.service} not found: create it, or fix spec.service "
            "(the experiment waits for it)",
            reason=ExperimentReason.SERVICE_NOT_FOUND,
            delay=max(ctx.settings.retry_delay, 5.0),
        )
    return service


def require_models(ctx: HandlerContext, namespace: str, spec: ABExperimentSpec) -> None:
    for i, variant in enumerate(spec.variants):
        resolve_onnx_artifact(
            ctx,
            namespace,
            variant.model_version,
            field=f"spec.variants[{i}].modelVersion (variant {variant.name})",
            waiting="the experiment starts",
            not_found_reason=ExperimentReason.MODEL_VERSION_NOT_FOUND,
        )


def require_routing_owner(ctx: HandlerContext, body: Mapping[str, Any], spec: ABExperimentSpec) -> None:
    """The experiment is the one that routes its service (the oldest live one naming it)."""
    meta = body["metadata"]
    ns = meta["namespace"]
    incumbent = read_routing(ctx.kube.get(CONFIGMAPS, routing_configmap_name(spec.service), ns))
    owner = routing_owner(ctx.kube.list(AB_EXPERIMENTS, ns), spec.service, incumbent)
    if owner is not None and owner["metadata"]["name"] != meta["name"]:
        other = owner["metadata"]["name"]
        raise WaitError(
            f"ABExperiment {meta['namespace']}/{other} already routes ClassifierService {spec.service}: "
            f"one experiment per service at a time; delete {other} (or wait until it is deleted) to run "
            "this one",
            reason=ExperimentReason.ROUTING_CONFLICT,
            delay=max(ctx.settings.retry_delay, 10.0),
        )


def variants_loaded(ctx: HandlerContext, namespace: str, name: str, spec: ABExperimentSpec) -> None:
    """The service's Deployment has rolled out a config with every variant, and a pod serves it."""
    deployment = ctx.kube.get(DEPLOYMENTS, classifier_names(spec.service).deployment, namespace)
    want = variants_annotation(f"{namespace}/{name}", [v.name for v in spec.variants])
    template = ((deployment or {}).get("spec") or {}).get("template") or {}
    have = ((template.get("metadata") or {}).get("annotations") or {}).get(VARIANTS_ANNOTATION)
    dstatus = (deployment or {}).get("status") or {}
    desired = int(((deployment or {}).get("spec") or {}).get("replicas") or 0)
    generation = int(((deployment or {}).get("metadata") or {}).get("generation") or 0)
    rolled_out = (
        int(dstatus.get("observedGeneration") or 0) >= generation
        and int(dstatus.get("updatedReplicas") or 0) >= desired
        and int(dstatus.get("replicas") or 0) <= int(dstatus.get("updatedReplicas") or 0)
        and int(dstatus.get("availableReplicas") or 0) >= 1
    )
    if deployment is not None and have == want and rolled_out:
        return
    if deployment is None or have != want:
        detail = (
            "its pods do not load this experiment's variants yet (the ClassifierService controller adds "
            "them once every ModelVersion is Ready)"
        )
    elif desired == 0:
        detail = "it is scaled to 0 replicas: scale it up"
    else:
        detail = (
            f"its pods are rolling out with the variants ({dstatus.get('updatedReplicas') or 0}/{desired} "
            f"updated, {dstatus.get('availableReplicas') or 0} available)"
        )
    raise WaitError(
        f"ClassifierService {namespace}/{spec.service}: {detail}; until then it serves its own model and "
        "the experiment's clock has not started",
        reason=ExperimentReason.VARIANTS_NOT_LOADED,
        delay=max(ctx.settings.retry_delay, 2.0),
    )
