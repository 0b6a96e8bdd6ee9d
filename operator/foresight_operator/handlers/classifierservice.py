"""ClassifierService: spec -> ConfigMap + Deployment + Service (+ PVC or Redis settings, + HPA) -> status.

Handlers (thin):

- create / resume / spec update run :func:`reconcile`: validate, resolve the ONNX ModelVersion
  when that backend is used, check the referenced Secrets exist (a missing one is
  ``Ready=False, reason SecretNotFound``, retried, and no Deployment is created or changed, so
  there is no crash-looping rollout), create-or-patch the children, then :func:`sync_status`;
- every event of a Deployment we own runs :func:`sync_status` (replicas, readyReplicas, phase,
  Ready from the Deployment's ``Available``), and its deletion runs :func:`reconcile` again;
- a timer every :data:`STATS_INTERVAL` seconds reconciles quietly (children that drifted or
  vanished come back) and reads ``GET /api/v1/stats/today`` from a ready pod into
  ``cacheHitRate`` and ``requestsToday``.

The stats URL is the pod IP from the Pod's status and the container port, which works from an
operator inside the cluster and with the test kubelet (whose pods are local processes with pod IP
127.0.0.1). With ``authTokenSecret`` set, the operator reads that token to call the stats
endpoint; it stays in memory and is never logged.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from foresight.api.abexperiment import AB_EXPERIMENT, ABExperimentSpec
from foresight.api.classifierservice import (
    CLASSIFIER_SERVICE,
    ClassifierPhase,
    ClassifierReason,
    ClassifierServiceSpec,
)
from foresight.api.meta import GROUP, VERSION, ConditionType, Reason
from foresight.contract.classifier import STATS_PATH
from foresight.contract.experiment import routing_configmap_name
from foresight.kube import CONFIGMAPS, DEPLOYMENTS, PODS, SECRETS, SERVICES, KubeApiError, ResourceRef

from ..builders.abexperiment import read_routing, routing_owner
from ..builders.classifierservice import (
    BIND_HOST_ANNOTATION,
    ClassifierChildren,
    ExperimentServing,
    OnnxModel,
    VariantModel,
    build_classifier_children,
    classifier_names,
)
from ..reconcile import (
    AB_EXPERIMENTS,
    CLASSIFIER_SERVICES,
    ReconcileError,
    SpecError,
    WaitError,
    find_condition,
    owned_by,
    owner_labels,
    owner_selector,
    set_condition,
    write_status,
)
from ..reconcile.children import UpdateFn
from ..reconcile.updates import configmap_update, deployment_update, replace_spec_update, service_update
from .children import make_child, watch_children
from .common import guarded, on_spec, parse_spec, wait_for_secrets, write_and_report_status
from .context import HandlerContext
from .onnx_artifacts import resolve_onnx_artifact

__all__ = [
    "STATS_INTERVAL",
    "StatsFetcher",
    "classifier_status",
    "fetch_stats_http",
    "read_stats",
    "reconcile",
    "refresh",
    "register_classifierservice",
    "sync_status",
]

log = logging.getLogger(__name__)
Obj = dict[str, Any]
KIND = CLASSIFIER_SERVICE.kind
PVCS = ResourceRef("v1", "persistentvolumeclaims", "PersistentVolumeClaim")
HPAS = ResourceRef("autoscaling/v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler")
STATS_INTERVAL = 10.0
"""Seconds between stats reads (one small GET per service; the numbers are for dashboards)."""
STATS_TIMEOUT = 3.0

StatsFetcher = Callable[[str, Mapping[str, str]], Obj]
"""``(url, headers) -> JSON body`` of ``GET /api/v1/stats/today``; raises ``OSError`` / ``ValueError``."""


def fetch_stats_http(url: str, headers: Mapping[str, str]) -> Obj:
    """The default :data:`StatsFetcher`: one GET with a short timeout."""
    req = urllib.request.Request(url, headers=dict(headers))
    with urllib.request.urlopen(req, timeout=STATS_TIMEOUT) as resp:
        body = json.loads(resp.read())
    if not isinstance(body, dict):
        raise ValueError(f"{url} answered {type(body).__name__}, not an object")
    return body


# --- plan ---------------------------------------------------------------------------------------


def _onnx_model(ctx: HandlerContext, namespace: str, spec: ClassifierServiceSpec) -> OnnxModel | None:
    if spec.backend.type != "onnx":
        return None
    if spec.backend.onnx is None:
        raise SpecError("backend.type onnx needs backend.onnx.modelVersion", field="backend.onnx")
    return resolve_onnx_artifact(
        ctx,
        namespace,
        spec.backend.onnx.model_version,
        field="spec.backend.onnx.modelVersion",
        waiting="the ClassifierService is deployed",
    )


def experiment_serving(ctx: HandlerContext, namespace: str, name: str) -> ExperimentServing | None:
    """The ABExperiment whose variants the service's pods load: the one routing it
    (:func:`~foresight_operator.builders.abexperiment.routing_owner`), once every variant's
    ModelVersion has a mountable ONNX file. Until then ``None``: the service serves its own model,
    and the experiment's status says what is missing."""
    incumbent = read_routing(ctx.kube.get(CONFIGMAPS, routing_configmap_name(name), namespace))
    owner = routing_owner(ctx.kube.list(AB_EXPERIMENTS, namespace), name, incumbent)
    if owner is None:
        return None
    experiment = f"{namespace}/{owner['metadata']['name']}"
    try:
        spec = ABExperimentSpec.model_validate(owner.get("spec") or {})
        variants = tuple(
            VariantModel(
                name=v.name,
                model_version=v.model_version,
                model=resolve_onnx_artifact(
                    ctx, namespace, v.model_version, field="the experiment", waiting="the variants load"
                ),
            )
            for v in spec.variants
        )
    except (ValueError, WaitError) as exc:  # the experiment's own status says what to fix
        log.info("ClassifierService %s/%s: variants of %s not loaded: %s", namespace, name, experiment, exc)
        return None
    return ExperimentServing(experiment=experiment, variants=variants)


def plan(ctx: HandlerContext, body: Mapping[str, Any]) -> ClassifierChildren:
    """The children ``body`` should have (raises SpecError / WaitError)."""
    meta = body["metadata"]
    spec = parse_spec(ClassifierServiceSpec, body.get("spec"))
    ns, name = meta["namespace"], meta["name"]
    annotations = meta.get("annotations") or {}
    try:
        return build_classifier_children(
            spec,
            name=name,
            namespace=ns,
            labels=owner_labels(KIND, name),
            default_image=ctx.settings.runtime_image,
            bind_host=annotations.get(BIND_HOST_ANNOTATION) or "0.0.0.0",
            onnx_model=_onnx_model(ctx, ns, spec),
            experiment=experiment_serving(ctx, ns, name),
        )
    except ValueError as exc:  # a combination the CRD's rules should have rejected
        raise SpecError(str(exc)) from exc


# --- children -----------------------------------------------------------------------------------


def _write_waiting(ctx: HandlerContext, body: Mapping[str, Any], err: WaitError) -> None:
    """Phase ``Pending`` (when nothing is deployed yet) and ``Ready=False`` with the reason."""
    meta = body["metadata"]
    now = ctx.clock()
    deployment = ctx.kube.get(DEPLOYMENTS, classifier_names(meta["name"]).deployment, meta["namespace"])

    def compute(current: Obj) -> Obj:
        status = dict(current.get("status") or {})
        if deployment is None:
            status["phase"] = ClassifierPhase.PENDING
        status["conditions"] = set_condition(
            status.get("conditions"),
            ConditionType.READY,
            "False",
            err.reason,
            err.message,
            generation=current["metadata"].get("generation"),
            now=now,
        )
        return status

    write_status(ctx.kube, CLASSIFIER_SERVICES, meta["namespace"], meta["name"], compute)


def reconcile(ctx: HandlerContext, body: Any) -> None:
    """Make the children of one ClassifierService exist and match its spec, then sync its status."""
    meta = body["metadata"]
    ns, name = meta["namespace"], meta["name"]
    try:
        children = plan(ctx, body)
        wait_for_secrets(ctx, ns, children.secrets, waiting="the ClassifierService is deployed")
    except WaitError as exc:
        _write_waiting(ctx, body, exc)
        raise
    wanted: list[tuple[ResourceRef, Obj, UpdateFn | None]] = [
        (CONFIGMAPS, children.config_map, configmap_update),
        # A claim's spec is immutable once bound (only growing is allowed); it is created, never patched.
        *([(PVCS, children.pvc, None)] if children.pvc is not None else []),
        # With autoscaling the HPA owns the count: the desired replicas is only the starting point.
        (
            DEPLOYMENTS,
            children.deployment,
            functools.partial(deployment_update, manage_replicas=children.hpa is None),
        ),
        (SERVICES, children.service, service_update),
        *([(HPAS, children.hpa, replace_spec_update)] if children.hpa is not None else []),
    ]
    for ref, obj, update in wanted:
        make_child(
            ctx, body, ref, obj, update=update, announce=f"created {ref.kind} {obj['metadata']['name']}"
        )
    if children.hpa is None:
        stale = ctx.kube.get(HPAS, children.names.hpa, ns)
        if stale is not None and owned_by(stale, meta["uid"]):
            ctx.kube.delete(HPAS, children.names.hpa, ns)
            ctx.post_event(body, "Normal", "AutoscalingRemoved", f"deleted HPA {children.names.hpa}")
    sync_status(ctx, ns, name, generation=meta.get("generation"), endpoint=children.endpoint)


# --- status -------------------------------------------------------------------------------------


def _pod_problem(pods: list[Obj]) -> str | None:
    """The first container waiting / terminated reason among ``pods`` (what `kubectl describe` shows)."""
    for pod in pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            state = cs.get("state") or {}
            for key in ("waiting", "terminated"):
                detail = state.get(key)
                if detail and detail.get("reason") not in (None, "ContainerCreating", "Completed"):
                    msg = str(detail.get("message") or "")[:300]
                    return f"pod {pod['metadata']['name']}: {detail.get('reason')}" + (
                        f": {msg}" if msg else ""
                    )
    return None


def classifier_status(
    current: Mapping[str, Any],
    deployment: Mapping[str, Any] | None,
    *,
    now: Any,
    endpoint: str | None,
    generation: int | None = None,
    stats: Mapping[str, Any] | None = None,
    pod_problem: str | None = None,
) -> Obj:
    """The new status of ClassifierService ``current`` given its Deployment (pure).

    ``generation``: set when this comes from a reconcile of that generation (observedGeneration);
    ``stats``: the service's ``/api/v1/stats/today`` body, when it was just read.
    """
    status = dict(current.get("status") or {})
    cgen = (current.get("metadata") or {}).get("generation")
    conds = status.get("conditions") or []
    if endpoint:
        status["endpoint"] = endpoint
    if generation is not None:
        status["observedGeneration"] = generation
    if stats is not None:
        requests_today = stats.get("requests")
        if isinstance(requests_today, int) and requests_today >= 0:
            status["requestsToday"] = requests_today
        rate = stats.get("hit_rate")
        if isinstance(rate, int | float) and 0 <= rate <= 1:
            status["cacheHitRate"] = float(rate)
    if deployment is None:
        return {**status, "conditions": conds}
    dstatus = deployment.get("status") or {}
    desired = int((deployment.get("spec") or {}).get("replicas") or 0)
    ready = int(dstatus.get("readyReplicas") or 0)
    status["replicas"] = int(dstatus.get("replicas") or 0)
    status["readyReplicas"] = ready
    available = find_condition(dstatus.get("conditions"), "Available")
    if desired == 0:
        phase, rstatus, reason = ClassifierPhase.STOPPED, "False", ClassifierReason.SCALED_TO_ZERO
        message = "spec.replicas is 0: no pod serves; scale it up to serve"
    elif available is not None and available.get("status") == "True" and ready > 0:
        phase, rstatus, reason = ClassifierPhase.RUNNING, "True", ClassifierReason.AVAILABLE
        message = f"{ready}/{desired} replicas ready" + (f" at {endpoint or status.get('endpoint')}")
    else:
        phase, rstatus, reason = ClassifierPhase.DEPLOYING, "False", ClassifierReason.DEPLOYMENT_NOT_READY
        message = f"{ready}/{desired} replicas ready"
        if pod_problem:
            message += f"; {pod_problem}"
    status["phase"] = phase
    conds = set_condition(conds, ConditionType.READY, rstatus, reason, message, generation=cgen, now=now)
    degraded = find_condition(conds, ConditionType.DEGRADED)
    if degraded is not None and degraded.get("status") == "True" and rstatus == "True":
        conds = set_condition(
            conds,
            ConditionType.DEGRADED,
            "False",
            Reason.RECONCILED,
            "serving again",
            generation=cgen,
            now=now,
        )
    status["conditions"] = conds
    return status


def sync_status(
    ctx: HandlerContext,
    namespace: str,
    name: str,
    *,
    generation: int | None = None,
    endpoint: str | None = None,
    stats: Mapping[str, Any] | None = None,
) -> None:
    """Recompute one ClassifierService's status from its Deployment (and ``stats`` when given)."""
    names = classifier_names(name)

    def compute(current: Obj) -> Obj | None:
        cstatus = current.get("status") or {}
        if cstatus.get("phase") == ClassifierPhase.FAILED and generation is None:
            return None  # an invalid spec's status belongs to the reconcile handler
        deployment = ctx.kube.get(DEPLOYMENTS, names.deployment, namespace)
        problem = None
        if deployment is not None and not (deployment.get("status") or {}).get("readyReplicas"):
            pods = ctx.kube.list(PODS, namespace, label_selector=owner_selector(KIND, name))
            problem = _pod_problem(pods)
        if deployment is None and generation is None:
            return None  # not deployed yet: the reconcile handler says why
        return classifier_status(
            current,
            deployment,
            now=ctx.clock(),
            endpoint=endpoint,
            generation=generation,
            stats=stats,
            pod_problem=problem,
        )

    write_and_report_status(
        ctx,
        CLASSIFIER_SERVICES,
        namespace,
        name,
        compute,
        announce_phases=(ClassifierPhase.RUNNING, ClassifierPhase.DEPLOYING),
    )


def read_stats(ctx: HandlerContext, body: Mapping[str, Any], fetch: StatsFetcher) -> Obj | None:
    """Today's stats from one ready pod of the service, or ``None`` when no pod can answer."""
    meta = body["metadata"]
    ns, name = meta["namespace"], meta["name"]
    pods = ctx.kube.list(PODS, ns, label_selector=owner_selector(KIND, name))
    ready = [
        p
        for p in pods
        if (p.get("status") or {}).get("podIP")
        and (find_condition((p.get("status") or {}).get("conditions"), ConditionType.READY) or {}).get(
            "status"
        )
        == "True"
        and not (p.get("metadata") or {}).get("deletionTimestamp")
    ]
    if not ready:
        return None
    headers = {"Accept": "application/json"}
    token_ref = (body.get("spec") or {}).get("authTokenSecret")
    if token_ref:
        secret = ctx.kube.get(SECRETS, token_ref["name"], ns)
        raw = ((secret or {}).get("data") or {}).get(token_ref["key"])
        if not raw:
            return None
        headers["Authorization"] = "Bearer " + base64.b64decode(raw).decode().strip()
    # With sqlite there is one pod; with Redis every pod reads the same shared counts.
    pod = sorted(ready, key=lambda p: p["metadata"]["name"])[0]
    ports = ((pod.get("spec") or {}).get("containers") or [{}])[0].get("ports") or []
    port = next((p.get("containerPort") for p in ports if p.get("name") == "http"), None)
    if port is None:
        return None
    url = f"http://{pod['status']['podIP']}:{port}{STATS_PATH}"
    try:
        return fetch(url, headers)
    except (OSError, ValueError) as exc:  # urllib's errors are OSErrors; a bad body a ValueError
        log.info("stats of ClassifierService %s/%s not read from %s: %s", ns, name, url, exc)
        return None


def refresh(ctx: HandlerContext, body: Any, fetch: StatsFetcher) -> None:
    """The timer: reconcile quietly (the create/update handlers report failures), then read stats."""
    meta = body["metadata"]
    status = body.get("status") or {}
    if status.get("phase") == ClassifierPhase.FAILED and status.get("observedGeneration") == meta.get(
        "generation"
    ):
        return  # invalid spec: nothing to keep in shape until it changes
    try:
        reconcile(ctx, body)
    except (ReconcileError, KubeApiError) as exc:
        log.debug("periodic reconcile of ClassifierService %s/%s: %s", meta["namespace"], meta["name"], exc)
        return
    stats = read_stats(ctx, body, fetch)
    if stats is not None:
        sync_status(ctx, meta["namespace"], meta["name"], stats=stats)


# --- registration -------------------------------------------------------------------------------


def register_classifierservice(
    registry: Any,
    ctx: HandlerContext,
    *,
    fetch_stats: StatsFetcher = fetch_stats_http,
    stats_interval: float = STATS_INTERVAL,
) -> None:
    import kopf

    plural = CLASSIFIER_SERVICE.plural

    def on_classifierservice(body: Any, retry: int, **_: Any) -> None:
        guarded(
            ctx,
            CLASSIFIER_SERVICES,
            body,
            retry,
            lambda: reconcile(ctx, body),
            invalid_phase=ClassifierPhase.FAILED,
        )

    on_spec(registry, plural, "reconcile", on_classifierservice)

    def on_timer(body: Any, logger: Any, **_: Any) -> None:
        try:
            refresh(ctx, body, fetch_stats)
        except Exception as exc:  # a timer must not die; the next tick tries again
            logger.warning(f"ClassifierService refresh failed: {exc}")

    kopf.timer(GROUP, VERSION, plural, registry=registry, id="refresh", interval=stats_interval)(on_timer)

    def on_deployment_change(namespace: str, owner: str, type: str | None, _deployment: Any) -> None:
        if type != "DELETED":
            sync_status(ctx, namespace, owner)
            return
        current = ctx.kube.get(CLASSIFIER_SERVICES, owner, namespace)
        if current is not None and not current["metadata"].get("deletionTimestamp"):
            reconcile(ctx, current)  # someone deleted our Deployment: put it back

    watch_children(
        registry,
        DEPLOYMENTS,
        owner_kind=KIND,
        handler_id="classifierservice-deployment-events",
        on_change=on_deployment_change,
    )
    kopf.on.event(
        GROUP, VERSION, AB_EXPERIMENT.plural, registry=registry, id="classifierservice-experiments"
    )(_experiment_watcher(ctx))


def _experiment_watcher(ctx: HandlerContext) -> Callable[..., None]:
    """An ABExperiment naming a service appeared, changed its variants, or went: reconcile the service
    (it loads or drops the variants) at once instead of at its next timer tick."""
    seen: dict[str, str] = {}

    def on_event(body: Any, type: str | None, logger: Any, **_: Any) -> None:
        meta, spec = body.get("metadata") or {}, body.get("spec") or {}
        uid, service = str(meta.get("uid")), spec.get("service")
        key = json.dumps([service, spec.get("variants"), bool(meta.get("deletionTimestamp"))], sort_keys=True)
        if type == "DELETED":
            seen.pop(uid, None)
        elif seen.get(uid) == key:
            return  # a status write: nothing the service loads changed
        else:
            seen[uid] = key
        current = ctx.kube.get(CLASSIFIER_SERVICES, str(service), meta.get("namespace")) if service else None
        if current is None or current["metadata"].get("deletionTimestamp"):
            return
        try:
            reconcile(ctx, current)
        except (ReconcileError, KubeApiError) as exc:  # the service's own handlers report it
            logger.debug(f"ClassifierService {service} after ABExperiment {meta.get('name')} {type}: {exc}")

    return on_event
