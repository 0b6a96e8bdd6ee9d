"""A resource's children, from a handler: making them, and hearing when they change.

Every kind's handler makes its children the same way (:func:`make_child`): the child is adopted
(an owner reference, so it goes when its owner goes), created or patched
(:func:`~foresight_operator.reconcile.ensure_child`), counted in
``foresight_operator_children_created`` when created, and, when the handler has something to say
about it, announced by an event on the owner. :func:`watch_children` calls the owner's handler on
every change of one kind of child it made (a Job finishing, a Deployment becoming ready).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from foresight.kube import ResourceRef

from ..reconcile import KIND_LABEL, MANAGED_BY, MANAGED_BY_LABEL, ensure_child
from ..reconcile.children import UpdateFn
from .context import HandlerContext

__all__ = ["OnChildChange", "make_child", "watch_children"]

Obj = dict[str, Any]


def make_child(
    ctx: HandlerContext,
    owner: Mapping[str, Any],
    ref: ResourceRef,
    obj: Obj,
    *,
    update: UpdateFn | None = None,
    announce: str | None = None,
    reason: str | None = None,
) -> tuple[Obj, bool]:
    """Make ``obj`` (a child of ``owner``) exist and match; ``(object, created)``.

    ``announce``: the message of a Normal event on the owner when the child is created (reason
    ``reason``, by default ``<Kind>Created``); ``None`` posts none.
    """
    import kopf

    kopf.adopt(obj, owner=owner)  # type: ignore[arg-type]
    child, created = ensure_child(ctx.kube, ref, obj, owner_uid=owner["metadata"]["uid"], update=update)
    if created:
        ctx.metrics.children.labels(kind=owner["kind"], child=ref.kind).inc()
        if announce is not None:
            ctx.post_event(owner, "Normal", reason or f"{ref.kind}Created", announce)
    return child, created


OnChildChange = Callable[[str, str, str | None, Mapping[str, Any]], None]
"""``(namespace, owner name, event type, child)``: what to do when a child changes."""


def watch_children(
    registry: Any, ref: ResourceRef, *, owner_kind: str, handler_id: str, on_change: OnChildChange
) -> None:
    """Call ``on_change`` on every event of a ``ref`` object that ``owner_kind`` made (by its labels
    and owner reference). A failure is logged: the next event or the owner's own reconcile catches up.

    kopf watches a kind only while its CRD exists (a RayJob's appears with KubeRay).
    """
    import kopf

    group, _, version = ref.api_version.rpartition("/")

    def on_event(body: Any, type: str | None, logger: Any, **_: Any) -> None:
        meta = body.get("metadata") or {}
        owner = next((r for r in meta.get("ownerReferences") or [] if r.get("kind") == owner_kind), None)
        if owner is None:
            return
        try:
            on_change(meta["namespace"], owner["name"], type, body)
        except Exception as exc:  # the next event or the owner's own reconcile catches up
            logger.warning(f"{owner_kind} {owner['name']} not updated after {ref.kind} event {type}: {exc}")

    labels = {MANAGED_BY_LABEL: MANAGED_BY, KIND_LABEL: owner_kind}
    kopf.on.event(group, version, ref.plural, registry=registry, id=handler_id, labels=labels)(on_event)
