"""The wrapper every kind's handler runs in: timing, metrics, and the permanent / temporary split.

:func:`guarded` turns a :class:`SpecError` into ``Ready=False`` with the reason and message, a
Warning event and ``kopf.PermanentError`` (kopf stops retrying until the spec changes), and a
:class:`WaitError` or API failure into a Warning event, ``kopf.TemporaryError`` with a delay, and
``Degraded=True`` once the same resource has failed ``degraded_after`` times in a row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from foresight.api.meta import API_VERSION
from pydantic import BaseModel, ValidationError

from ..kube import KubeApiError, ResourceRef
from ..reconcile import ReconcileError, SpecError, WaitError, set_condition, write_status
from .context import HandlerContext

__all__ = ["guarded", "kind_ref", "parse_spec"]

log = logging.getLogger(__name__)
Obj = dict[str, Any]
M = TypeVar("M", bound=BaseModel)


def kind_ref(kind: str, plural: str) -> ResourceRef:
    return ResourceRef(API_VERSION, plural, kind)


def parse_spec(model: type[M], spec: Mapping[str, Any] | None) -> M:
    """The spec as its API model; a :class:`SpecError` that names every bad field otherwise."""
    try:
        return model.model_validate(dict(spec or {}))
    except ValidationError as exc:
        problems = "; ".join(
            f"spec.{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()
        )
        raise SpecError(f"the spec does not match the API: {problems}") from exc


def _write_failure(
    ctx: HandlerContext,
    ref: ResourceRef,
    body: Mapping[str, Any],
    err: ReconcileError,
    *,
    invalid_phase: str | None,
    degraded: bool,
    extra_false: tuple[str, ...],
) -> None:
    meta = body.get("metadata") or {}
    generation = meta.get("generation")
    now = ctx.clock()

    def compute(current: Obj) -> Obj:
        status = dict(current.get("status") or {})
        conds = status.get("conditions") or []
        if isinstance(err, SpecError):
            conds = set_condition(
                conds, "Ready", "False", err.reason, err.message, generation=generation, now=now
            )
            for ctype in extra_false:
                conds = set_condition(
                    conds, ctype, "False", err.reason, err.message, generation=generation, now=now
                )
            if invalid_phase is not None:
                status["phase"] = invalid_phase
            status["observedGeneration"] = generation
        else:
            ready = next((c for c in conds if c.get("type") == "Ready"), None)
            if ready is None or ready.get("status") != "True":
                conds = set_condition(
                    conds, "Ready", "False", err.reason, err.message, generation=generation, now=now
                )
            if degraded:
                conds = set_condition(
                    conds, "Degraded", "True", err.reason, err.message, generation=generation, now=now
                )
        status["conditions"] = conds
        return status

    try:
        write_status(ctx.kube, ref, meta["namespace"], meta["name"], compute)
    except (KubeApiError, WaitError) as exc:
        # The failure itself is what gets retried; a status that could not be written comes next time.
        log.warning(
            "could not write the failure status of %s/%s: %s", meta.get("namespace"), meta.get("name"), exc
        )


def guarded(
    ctx: HandlerContext,
    ref: ResourceRef,
    body: Mapping[str, Any],
    retry: int,
    work: Callable[[], None],
    *,
    invalid_phase: str | None = None,
    extra_false: tuple[str, ...] = (),
) -> None:
    """Run ``work`` for ``body`` (a resource of ``ref``) with the error policy of this module."""
    import kopf

    kind = ref.kind
    with ctx.metrics.timed(kind):
        try:
            work()
        except SpecError as exc:
            ctx.metrics.reconciles.labels(kind=kind, result="invalid").inc()
            ctx.metrics.errors.labels(kind=kind, reason=exc.reason).inc()
            _write_failure(
                ctx, ref, body, exc, invalid_phase=invalid_phase, degraded=False, extra_false=extra_false
            )
            ctx.post_event(body, "Warning", exc.reason, exc.message)
            raise kopf.PermanentError(f"{exc.reason}: {exc.message}") from exc
        except (WaitError, KubeApiError) as exc:
            err = exc if isinstance(exc, WaitError) else WaitError(str(exc), reason="ApiError")
            if isinstance(exc, KubeApiError) and not exc.temporary:
                # 403 or 422 from the API server: retrying will not help until someone changes RBAC
                # or the operator; still retried slowly, and reported.
                err = WaitError(str(exc), reason="ApiRejected", delay=max(ctx.settings.retry_delay, 60))
            ctx.metrics.reconciles.labels(kind=kind, result="retry").inc()
            ctx.metrics.errors.labels(kind=kind, reason=err.reason).inc()
            degraded = retry + 1 >= ctx.settings.degraded_after
            _write_failure(ctx, ref, body, err, invalid_phase=None, degraded=degraded, extra_false=())
            ctx.post_event(body, "Warning", err.reason, err.message)
            delay = err.delay if err.delay is not None else ctx.settings.retry_delay
            raise kopf.TemporaryError(f"{err.reason}: {err.message}", delay=delay) from exc
        ctx.metrics.reconciles.labels(kind=kind, result="ok").inc()
