"""The ForecastTask handlers kopf calls: thin wrappers around :class:`.controller.ForecastTaskController`.

create / resume / spec update reconcile; a timer every ``tick`` seconds reconciles only when a run
is under way or due (:meth:`~.controller.ForecastTaskController.due`, no API call otherwise);
every finished run Job reconciles its task at once, and so does every change of a running shards'
Job (a shard done or failed: status follows per shard); deletion cleans up (:mod:`.deletion`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from foresight.api.forecasttask import FORECAST_TASK, ForecastPhase
from foresight.api.meta import GROUP, VERSION
from foresight.kube import JOBS

from ...builders.forecasttask import KIND
from ...builders.forecasttask_shards import stage_of
from ...reconcile import FORECAST_TASKS, JobState, job_state
from ..children import watch_children
from ..common import guarded, on_spec
from ..context import HandlerContext
from .controller import ForecastTaskController
from .gauges import ForecastTaskMetrics

__all__ = ["register_forecasttask"]


def register_forecasttask(
    registry: Any,
    ctx: HandlerContext,
    *,
    tick: float = 5.0,
    controller_factory: Callable[[HandlerContext], ForecastTaskController] | None = None,
) -> ForecastTaskController:
    """Register the ForecastTask handlers; ``tick`` is how often (seconds) due runs are looked for."""
    import kopf

    controller = (
        controller_factory(ctx)
        if controller_factory is not None
        else ForecastTaskController(ctx, ForecastTaskMetrics(ctx.metrics.registry))
    )
    plural = FORECAST_TASK.plural

    def reconcile(body: Any, retry: int, **_: Any) -> None:
        guarded(
            ctx,
            FORECAST_TASKS,
            body,
            retry,
            lambda: controller.reconcile(body),
            invalid_phase=ForecastPhase.FAILED,
        )

    on_spec(registry, plural, "reconcile", reconcile)

    def on_tick(body: Any, **kwargs: Any) -> None:
        if controller.due(body, ctx.clock()):
            reconcile(body, int(kwargs.get("retry") or 0))

    kopf.timer(GROUP, VERSION, plural, registry=registry, id="schedule", interval=tick, initial_delay=tick)(
        on_tick
    )

    def on_delete(body: Any, retry: int, **_: Any) -> None:
        controller.on_delete(body, retry)

    kopf.on.delete(GROUP, VERSION, plural, registry=registry, id="cleanup")(on_delete)

    def on_run_change(namespace: str, owner: str, _type: str | None, job: Any) -> None:
        if job_state(job) is JobState.RUNNING and stage_of(job) != "shards":
            return  # only a finished run changes the task (the timer catches up otherwise)
        task = ctx.kube.get(FORECAST_TASKS, owner, namespace)
        if task is not None:
            controller.reconcile(task)

    watch_children(
        registry, JOBS, owner_kind=KIND, handler_id="forecasttask-job-events", on_change=on_run_change
    )
    return controller
