"""The ForecastTask handlers kopf calls: thin wrappers around :class:`.controller.ForecastTaskController`.

create / resume / spec update reconcile; every finished or deleted run Job reconciles its task at
once, and so does every change of a running shards' Job (a shard done or failed: status follows per shard);
deletion cleans up (:mod:`.deletion`). Runs that are due by the clock (``nextRunTime``) are started
by one thread for all tasks (:mod:`.wakeups`), not by a timer per task: the controller tells it
when each task is due after every reconcile.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
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
from .wakeups import Wakeups

__all__ = ["register_forecasttask"]


def register_forecasttask(
    registry: Any,
    ctx: HandlerContext,
    *,
    tick: float = 5.0,
    controller_factory: Callable[[HandlerContext], ForecastTaskController] | None = None,
) -> ForecastTaskController:
    """Register the ForecastTask handlers; ``tick`` is the shortest wait (seconds) before a task whose
    next run is already due is looked at again."""
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

    def reconcile_due(namespace: str, name: str) -> float | None:
        body = ctx.kube.get(FORECAST_TASKS, name, namespace)
        if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
            return None
        try:
            reconcile(body, 0)
        except kopf.TemporaryError as exc:
            return float(exc.delay or ctx.settings.retry_delay)
        except kopf.PermanentError:
            return None  # Ready=False says why; a spec change reconciles it again
        return None

    wakeups = Wakeups(reconcile_due)
    controller.wakeups = wakeups
    controller.min_wait = timedelta(seconds=tick)
    kopf.on.startup(registry=registry, id="forecasttask-wakeups")(lambda **_: wakeups.start())
    kopf.on.cleanup(registry=registry, id="forecasttask-wakeups-stop")(lambda **_: wakeups.stop())

    def on_delete(body: Any, retry: int, **_: Any) -> None:
        controller.on_delete(body, retry)

    kopf.on.delete(GROUP, VERSION, plural, registry=registry, id="cleanup")(on_delete)

    def on_run_change(namespace: str, owner: str, type: str | None, job: Any) -> None:
        if type != "DELETED" and job_state(job) is JobState.RUNNING and stage_of(job) != "shards":
            return  # only a finished (or deleted) run changes the task
        task = ctx.kube.get(FORECAST_TASKS, owner, namespace)
        if task is not None:
            controller.reconcile(task)

    watch_children(
        registry, JOBS, owner_kind=KIND, handler_id="forecasttask-job-events", on_change=on_run_change
    )
    return controller
