"""What every kind's handler shares: the error-policy wrapper, spec parsing, status reporting.

:func:`guarded` turns a :class:`SpecError` into ``Ready=False`` with the reason and message, a
Warning event and ``kopf.PermanentError`` (kopf stops retrying until the spec changes), and a
:class:`WaitError` or API failure into a Warning event, ``kopf.TemporaryError`` with a delay, and
``Degraded=True`` once the same resource has failed ``degraded_after`` times in a row.
:func:`write_and_report_status` writes a status and tells ``/metrics`` and the events about it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, TypeVar

from foresight.api.meta import GROUP, VERSION, ConditionType, Reason, SecretKeyRef
from foresight.kube import KubeApiError, ResourceRef
from pydantic import BaseModel, ValidationError

from ..reconcile import (
    ReconcileError,
    SpecError,
    StatusWrite,
    WaitError,
    find_condition,
    require_secrets,
    set_condition,
    write_status,
)
from .context import HandlerContext

__all__ = ["guarded", "on_spec", "parse_spec", "wait_for_secrets", "write_and_report_status"]

log = logging.getLogger(__name__)
Obj = dict[str, Any]
M = TypeVar("M", bound=BaseModel)


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
                conds, ConditionType.READY, "False", err.reason, err.message, generation=generation, now=now
            )
            for ctype in extra_false:
                conds = set_condition(
                    conds, ctype, "False", err.reason, err.message, generation=generation, now=now
                )
            if invalid_phase is not None:
                status["phase"] = invalid_phase
            status["observedGeneration"] = generation
        else:
            ready = find_condition(conds, ConditionType.READY)
            if ready is None or ready.get("status") != "True":
                conds = set_condition(
                    conds,
                    ConditionType.READY,
                    "False",
                    err.reason,
                    err.message,
                    generation=generation,
                    now=now,
                )
            if degraded:
                conds = set_condition(
                    conds,
                    ConditionType.DEGRADED,
                    "True",
                    err.reason,
                    err.message,
                    generation=generation,
                    now=now,
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
            err = exc if isinstance(exc, WaitError) else WaitError(str(exc), reason=Reason.API_ERROR)
            if isinstance(exc, KubeApiError) and not exc.temporary:
                # 403 or 422 from the API server: retrying will not help until someone changes RBAC
                # or the operator; still retried slowly, and reported.
                err = WaitError(str(exc), reason=Reason.API_REJECTED, delay=max(ctx.settings.retry_delay, 60))
            ctx.metrics.reconciles.labels(kind=kind, result="retry").inc()
            ctx.metrics.errors.labels(kind=kind, reason=err.reason).inc()
            degraded = retry + 1 >= ctx.settings.degraded_after
            _write_failure(ctx, ref, body, err, invalid_phase=None, degraded=degraded, extra_false=())
            ctx.post_event(body, "Warning", err.reason, err.message)
            delay = err.delay if err.delay is not None else ctx.settings.retry_delay
            raise kopf.TemporaryError(f"{err.reason}: {err.message}", delay=delay) from exc
        ctx.metrics.reconciles.labels(kind=kind, result="ok").inc()


def write_and_report_status(
    ctx: HandlerContext,
    ref: ResourceRef,
    namespace: str,
    name: str,
    compute: Callable[[Obj], Obj | None],
    *,
    warn_phases: Collection[str] = (),
    announce_phases: Collection[str] | None = None,
) -> StatusWrite | None:
    """:func:`~foresight_operator.reconcile.write_status`, then export the resource's state on
    ``/metrics`` (its series go when it is gone) and, when the phase changed, post its ``Ready``
    condition as an event: a Warning in ``warn_phases``, else Normal; only for ``announce_phases``
    when given. ``None`` when the resource is gone.
    """
    result = write_status(ctx.kube, ref, namespace, name, compute)
    ctx.metrics.record_status(ref.kind, namespace, name, result.new if result is not None else None)
    if result is None:
        return None
    phase = result.new.get("phase")
    announced = announce_phases is None or phase in announce_phases
    if result.changed and result.old.get("phase") != phase and announced:
        ready: Obj = find_condition(result.new.get("conditions"), ConditionType.READY) or {}
        reason, message = str(ready.get("reason") or phase), str(ready.get("message") or phase)
        ctx.post_event(result.body, "Warning" if phase in warn_phases else "Normal", reason, message)
    return result


SECRET_WAIT_MIN = 5.0
"""Seconds at least between looks for a missing Secret (someone is typing ``kubectl create secret``)."""


def wait_for_secrets(
    ctx: HandlerContext, namespace: str, refs: Iterable[SecretKeyRef], *, waiting: str
) -> None:
    """:func:`~foresight_operator.reconcile.require_secrets` with the operator's retry delay."""
    delay = max(ctx.settings.retry_delay, SECRET_WAIT_MIN)
    require_secrets(ctx.kube, namespace, refs, waiting=waiting, delay=delay)


def on_spec(registry: Any, plural: str, handler_id: str, handler: Callable[..., None]) -> None:
    """Register ``handler`` for a resource's spec as kopf sees it: resumed (operator start), created,
    and updated (``spec`` changes only: status writes do not call it)."""
    import kopf

    kopf.on.resume(GROUP, VERSION, plural, registry=registry, id=handler_id)(handler)
    kopf.on.create(GROUP, VERSION, plural, registry=registry, id=handler_id)(handler)
    kopf.on.update(GROUP, VERSION, plural, registry=registry, id=handler_id, field="spec")(handler)
