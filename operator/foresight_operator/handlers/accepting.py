"""Handlers for the kinds whose controllers come in later versions: validate, then accept.

ForecastTask, ModelVersion, ModelLibrary and ABExperiment get their spec
checked against the API model; a valid one gets phase ``Pending`` and ``Accepted=True``, an
invalid one ``Accepted=False`` / ``Ready=False`` with the fields to fix. Nothing else is done yet.
"""

from __future__ import annotations

from typing import Any

from foresight.api import KINDS
from foresight.api.meta import GROUP, VERSION, KindInfo

from ..reconcile import set_condition, write_status
from .common import guarded, kind_ref, parse_spec
from .context import HandlerContext

__all__ = ["ACCEPTING_KINDS", "accept", "register_accepting"]

ACCEPTING_KINDS = ("ModelLibrary", "ABExperiment")
Obj = dict[str, Any]


def accept(ctx: HandlerContext, info: KindInfo, body: Any) -> None:
    """Validate ``body``'s spec and record that it was accepted."""
    parse_spec(info.spec_model, body.get("spec"))
    meta = body["metadata"]
    generation = meta.get("generation")
    now = ctx.clock()
    ref = kind_ref(info.kind, info.plural)

    def compute(current: Obj) -> Obj:
        status = dict(current.get("status") or {})
        conds = set_condition(
            status.get("conditions"),
            "Accepted",
            "True",
            "Accepted",
            f"the spec is valid; the {info.kind} controller picks it up from here",
            generation=generation,
            now=now,
        )
        if any(c.get("type") == "Degraded" and c.get("status") == "True" for c in conds):
            conds = set_condition(
                conds, "Degraded", "False", "Reconciled", "", generation=generation, now=now
            )
        status["conditions"] = conds
        status.setdefault("phase", "Pending")
        if status.get("phase") == "Failed":
            status["phase"] = "Pending"  # was invalid, is valid now
        ready = next((c for c in conds if c.get("type") == "Ready"), None)
        if ready is not None and ready.get("reason") == "InvalidSpec":
            status["conditions"] = [c for c in conds if c.get("type") != "Ready"]
        status["observedGeneration"] = generation
        return status

    result = write_status(ctx.kube, ref, meta["namespace"], meta["name"], compute)
    if result is not None and result.changed and result.old.get("phase") != result.new.get("phase"):
        ctx.post_event(body, "Normal", "Accepted", f"{info.kind} spec accepted")
    ctx.metrics.record_status(info.kind, meta["namespace"], meta["name"], result.new if result else None)


def register_accepting(registry: Any, ctx: HandlerContext) -> None:
    import kopf

    for kind in ACCEPTING_KINDS:
        info = KINDS[kind]
        ref = kind_ref(info.kind, info.plural)

        def handler(body: Any, retry: int, _info: KindInfo = info, _ref: Any = ref, **_: Any) -> None:
            guarded(
                ctx,
                _ref,
                body,
                retry,
                lambda: accept(ctx, _info, body),
                invalid_phase="Failed",
                extra_false=("Accepted",),
            )

        for decorator in (
            kopf.on.resume(GROUP, VERSION, info.plural, registry=registry, id=f"accept-{info.plural}"),
            kopf.on.create(GROUP, VERSION, info.plural, registry=registry, id=f"accept-{info.plural}"),
            kopf.on.update(
                GROUP, VERSION, info.plural, registry=registry, id=f"accept-{info.plural}", field="spec"
            ),
        ):
            decorator(handler)
