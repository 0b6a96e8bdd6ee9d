"""Scrape mode: the task's forecast server, a Deployment and a Service owned by the task.

With ``output.mode: scrape`` they are kept current
(:func:`~foresight_operator.builders.forecasttask.build_scrape_children`); when the mode changes
away from scrape, the ones this task owns are deleted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from foresight.api.forecasttask import ForecastTaskSpec
from foresight.kube import DEPLOYMENTS, SERVICES

from ...builders.forecasttask import build_scrape_children, forecasts_name
from ...reconcile import owned_by
from ...reconcile.updates import deployment_update, service_update
from ..children import make_child
from ..context import HandlerContext

__all__ = ["sync_scrape_children"]


def _delete_server(ctx: HandlerContext, body: Mapping[str, Any], spec: ForecastTaskSpec) -> None:
    meta = body["metadata"]
    own = forecasts_name(meta["name"])
    for ref in (SERVICES, DEPLOYMENTS):
        stale = ctx.kube.get(ref, own, meta["namespace"])
        if stale is not None and owned_by(stale, meta["uid"]):
            ctx.kube.delete(ref, own, meta["namespace"])
            ctx.post_event(
                body, "Normal", f"{ref.kind}Deleted",
                f"deleted {ref.kind} {own}: output.mode is {spec.output.mode}, nothing to serve",
            )  # fmt: skip


def sync_scrape_children(ctx: HandlerContext, body: Mapping[str, Any], spec: ForecastTaskSpec) -> None:
    """Scrape mode: make the forecast server's Deployment and Service exist, owned and current.

    Other modes: delete them if this task owns them (its mode was scrape before).
    """
    if spec.output.mode != "scrape":
        _delete_server(ctx, body, spec)
        return
    meta = body["metadata"]
    children = build_scrape_children(
        spec, name=meta["name"], namespace=meta["namespace"], default_image=ctx.settings.runtime_image
    )
    serves = f"serves the forecasts for scraping at {children.endpoint}"
    for ref, obj, update in (
        (DEPLOYMENTS, children.deployment, deployment_update),
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
