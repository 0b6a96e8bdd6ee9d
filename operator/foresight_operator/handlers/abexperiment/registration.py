"""The ABExperiment handlers kopf calls: thin wrappers around :class:`.controller.ABExperimentController`.

create / resume / spec update reconcile at once; a timer every ``tick`` seconds reconciles when an
analysis is due or a problem is pending (:meth:`~.controller.ABExperimentController.due`, no API
call otherwise); a deleted experiment's series leave ``/metrics``. No finalizer: the routing
ConfigMap belongs to the ClassifierService, whose controller stops loading the variants once no
experiment names it.
"""

from __future__ import annotations

from typing import Any

from foresight.api.abexperiment import AB_EXPERIMENT
from foresight.api.meta import GROUP, VERSION

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

    kopf.on.event(GROUP, VERSION, plural, registry=registry, id="forget")(on_event)
    return controller
