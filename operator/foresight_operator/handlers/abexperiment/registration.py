"""The ABExperiment handlers kopf calls: thin wrappers around :class:`.controller.ABExperimentController`.

create / resume / spec update reconcile at once; a timer every ``tick`` seconds reconciles when an
analysis is due or a problem's backoff is over (:meth:`~.controller.ABExperimentController.due`, no
API call otherwise); the events of what a waiting experiment names (its ClassifierService and that
service's Deployment, its ModelVersions, another experiment of the same service deleted) end its
backoff (:mod:`.waits`: no API call either, the next tick looks); a deleted experiment's series
leave ``/metrics``. No finalizer: the routing
ConfigMap belongs to the ClassifierService, whose controller stops loading the variants once no
experiment names it.
"""

from __future__ import annotations

from typing import Any

from foresight.api.abexperiment import AB_EXPERIMENT
from foresight.api.classifierservice import CLASSIFIER_SERVICE
from foresight.api.meta import GROUP, VERSION
from foresight.api.modelversion import MODEL_VERSION
from foresight.kube import DEPLOYMENTS

from ..children import watch_children
from ..common import on_spec
from ..context import HandlerContext
from .controller import ABExperimentController
from .observe import PrometheusFactory, prometheus_http

__all__ = ["ANALYSIS_TICK", "register_abexperiment"]

ANALYSIS_TICK = 5.0
"""Seconds between looks for due analyses at time scale 1 (an interval is at least 30 s)."""


def register_abexperiment(
    registry: Any,
    ctx: HandlerContext,
    *,
    prometheus: PrometheusFactory = prometheus_http,
    tick: float | None = None,
) -> ABExperimentController:
    import kopf

    controller = ABExperimentController(ctx, prometheus)
    plural = AB_EXPERIMENT.plural
    interval = tick if tick is not None else max(0.5, ANALYSIS_TICK * ctx.settings.experiment_time_scale)

    def reconcile(body: Any, **_: Any) -> None:
        controller.reconcile(body)

    on_spec(registry, plural, "reconcile", reconcile)

    def on_tick(body: Any, **_: Any) -> None:
        if controller.due(body, ctx.clock()):
            controller.reconcile(body)

    kopf.timer(
        GROUP, VERSION, plural, registry=registry, id="analyse", interval=interval, initial_delay=interval
    )(on_tick)

    def on_event(body: Any, type: str | None, **_: Any) -> None:
        if type == "DELETED":
            meta = body.get("metadata") or {}
            controller.forget(meta.get("namespace", ""), meta.get("name", ""))
            # An experiment waiting in RoutingConflict for this one may go now.
            service = (body.get("spec") or {}).get("service")
            if service:
                controller.waits.wake(meta.get("namespace", ""), ctx.clock(), service=str(service))

    kopf.on.event(GROUP, VERSION, plural, registry=registry, id="forget")(on_event)
    _register_wakes(registry, ctx, controller)
    return controller


def _register_wakes(registry: Any, ctx: HandlerContext, controller: ABExperimentController) -> None:
    """The events that end a waiting experiment's backoff (kinds the operator watches anyway)."""
    import kopf

    def on_service(body: Any, type: str | None, **_: Any) -> None:
        meta = body.get("metadata") or {}
        if type is not None:  # None: the initial listing (the resume handlers cover it)
            controller.waits.wake(meta.get("namespace", ""), ctx.clock(), service=meta.get("name"))

    kopf.on.event(
        GROUP, VERSION, CLASSIFIER_SERVICE.plural, registry=registry, id="abexperiment-service-wakes"
    )(on_service)

    def on_model(body: Any, type: str | None, **_: Any) -> None:
        meta = body.get("metadata") or {}
        if type is not None:
            controller.waits.wake(meta.get("namespace", ""), ctx.clock(), model_version=meta.get("name"))

    kopf.on.event(
        GROUP, VERSION, MODEL_VERSION.plural, registry=registry, id="abexperiment-modelversion-wakes"
    )(on_model)

    def on_deployment(namespace: str, owner: str, _type: str | None, _deployment: Any) -> None:
        controller.waits.wake(namespace, ctx.clock(), service=owner)  # VariantsNotLoaded: rolled out?

    watch_children(
        registry,
        DEPLOYMENTS,
        owner_kind=CLASSIFIER_SERVICE.kind,
        handler_id="abexperiment-deployment-wakes",
        on_change=on_deployment,
    )
