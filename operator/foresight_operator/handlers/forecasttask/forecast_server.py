"""Scrape mode: the task's forecast server, a Deployment (or, sharded, a StatefulSet with one pod
per shard) and a Service owned by the task.

With ``output.mode: scrape`` they are kept current
(:func:`~foresight_operator.builders.forecasttask.build_scrape_children`), and the workload of the
other shape is deleted when ``parallelism`` crosses 1; when the mode changes away from scrape, the
ones this task owns are deleted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from foresight.api.forecasttask import ForecastTaskSpec
from foresight.kube import DEPLOYMENTS, SERVICES, STATEFULSETS, ResourceRef

from ...builders.forecasttask import build_scrape_children, forecasts_name
from ...reconcile import owned_by
from ...reconcile.updates import deployment_update, service_update
from ..children import make_child
from ..context import HandlerContext

__all__ = ["sync_scrape_children"]


def _delete_server(
    ctx: HandlerContext,
    body: Mapping[str, Any],
    spec: ForecastTaskSpec,
    refs: tuple[ResourceRef, ...] = (SERVICES, DEPLOYMENTS, STATEFULSETS),
) -> None:
    meta = body["metadata"]
    own = forecasts_name(meta["name"])
    for ref in refs:
        stale = ctx.kube.get(ref, own, meta["namespace"])
        if stale is not None and owned_by(stale, meta["uid"]):
            ctx.kube.delete(ref, own, meta["namespace"])
            shape = "a StatefulSet, a pod per shard" if spec.parallelism > 1 else "a Deployment"
            why = (
                f"output.mode is {spec.output.mode}, nothing to serve"
                if spec.output.mode != "scrape"
                else f"parallelism is {spec.parallelism}: served by {shape}"
            )
            ctx.post_event(body, "Normal", f"{ref.kind}Deleted", f"deleted {ref.kind} {own}: {why}")


def sync_scrape_children(ctx: HandlerContext, body: Mapping[str, Any], spec: ForecastTaskSpec) -> None:
    """Scrape mode: make the forecast server's Deployment and Service exist, owned and current.

    Other modes: delete them if this task owns them (its mode was scrape before); looked for only
    when the spec changed since the last reconcile (a mode change is a spec change), not on every
    reconcile of the thousands of tasks that never had a server.
    """
    if spec.output.mode != "scrape":
        seen = (body.get("status") or {}).get("observedGeneration")
        if seen is not None and seen != body["metadata"].get("generation"):
            _delete_server(ctx, body, spec)
        return
    meta = body["metadata"]
    children = build_scrape_children(
        spec, name=meta["name"], namespace=meta["namespace"], default_image=ctx.settings.runtime_image
    )
    serves = f"serves the forecasts for scraping at {children.endpoint}"
    kind, workload = STATEFULSETS, children.statefulset
    if workload is None:
        kind, workload = DEPLOYMENTS, children.deployment
    assert workload is not None
    seen = (body.get("status") or {}).get("observedGeneration")
    if seen is None or seen != meta.get("generation"):  # parallelism may have crossed 1
        _delete_server(ctx, body, spec, (DEPLOYMENTS if kind is STATEFULSETS else STATEFULSETS,))
    for ref, obj, update in (
        (kind, workload, deployment_update),
        (SERVICES, children.service, service_update),
    ):
        make_child(
            ctx,
            body,
            ref,
            obj,
            update=update,
            announce=f"created {ref.kind} {obj['metadata']['name']}: {serves}",
        )
