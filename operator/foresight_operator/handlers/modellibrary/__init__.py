"""ModelLibrary: a fetch Job per spec, its verdict in status, atomic activation, ModelVersions of its models.

The handlers are thin (:func:`register_modellibrary`): create / resume / spec update, every change of
a fetch Job it owns, a timer while a retryable failure (or a superseded Job) waits, and every change
of any ModelLibrary of the namespace (for the ones waiting in ``Conflict``) call
:meth:`.controller.LibraryController.reconcile`. What the status says and means is in
:mod:`.status`, the rule for two ModelLibraries of one library name in :mod:`.siblings`, the
ModelVersions in :mod:`.models`.
"""

from __future__ import annotations

from typing import Any

from foresight.api.meta import GROUP, VERSION
from foresight.api.modellibrary import MODEL_LIBRARY, LibraryPhase
from foresight.kube import JOBS

from ...builders.modellibrary import KIND
from ...reconcile import MODEL_LIBRARIES
from ..children import watch_children
from ..common import guarded, on_spec
from ..context import HandlerContext
from .controller import LibraryController
from .siblings import Conflicts

__all__ = ["LibraryController", "register_modellibrary"]


def register_modellibrary(registry: Any, ctx: HandlerContext) -> LibraryController:
    """Register the ModelLibrary handlers into ``registry`` (a ``kopf.OperatorRegistry``)."""
    import kopf

    controller = LibraryController(ctx)
    plural = MODEL_LIBRARY.plural

    def reconcile(body: Any, retry: int, **_: Any) -> None:
        meta = body["metadata"]
        guarded(
            ctx,
            MODEL_LIBRARIES,
            body,
            retry,
            lambda: controller.reconcile(meta["namespace"], meta["name"]),
            invalid_phase=LibraryPhase.FAILED,
        )

    on_spec(registry, plural, "fetch", reconcile)

    def on_retry_tick(body: Any, **kwargs: Any) -> None:
        if controller.retry_due(body, ctx.clock()):
            reconcile(body, int(kwargs.get("retry") or 0))

    interval = max(1.0, ctx.settings.retry_delay / 2)
    kopf.timer(
        GROUP,
        VERSION,
        plural,
        registry=registry,
        id="retry",
        interval=interval,
        initial_delay=interval,
        when=lambda status, **_: (status or {}).get("phase") in (LibraryPhase.RETRYING, LibraryPhase.PENDING),
    )(on_retry_tick)

    conflicts = Conflicts()

    def on_any_library(body: Any, type: str | None, logger: Any, **_: Any) -> None:
        namespace = (body.get("metadata") or {}).get("namespace")
        if not namespace:
            return
        conflicts.see(body, deleted=type == "DELETED")
        try:
            for name in conflicts.waiting(namespace):
                controller.reconcile(namespace, name)
        except Exception as exc:  # the next event of any library of the namespace catches up
            logger.warning(f"ModelLibraries in Conflict in {namespace} not rechecked: {exc}")
        if type == "DELETED":
            controller.forget(namespace, body["metadata"]["name"])

    kopf.on.event(GROUP, VERSION, plural, registry=registry, id="library-names")(on_any_library)

    def on_job_change(namespace: str, owner: str, _type: str | None, _job: Any) -> None:
        controller.reconcile(namespace, owner)

    watch_children(
        registry, JOBS, owner_kind=KIND, handler_id="modellibrary-job-events", on_change=on_job_change
    )
    return controller
