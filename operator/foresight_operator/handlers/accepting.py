"""Handlers for the kinds whose controllers come in later versions: validate, then accept.

ABExperiment (:data:`ACCEPTING_KINDS`) gets its spec checked against the API model; a valid one
gets phase ``Pending`` and ``Accepted=True``, an invalid one ``Accepted=False`` / ``Ready=False``
with the fields to fix. Nothing else is done yet. (The other kinds have controllers of their own,
one handler module or package each.)
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from foresight.api import KINDS
from foresight.api.abexperiment import ExperimentPhase
from foresight.api.meta import ConditionType, KindInfo, Reason

from ..reconcile import find_condition, kind_ref, set_condition, write_status
from .common import guarded, on_spec, parse_spec
from .context import HandlerContext

__all__ = ["ACCEPTING_KINDS", "accept", "register_accepting"]

ACCEPTING_KINDS: dict[str, type[StrEnum]] = {"ABExperiment": ExperimentPhase}
"""The kinds accepted here, each with its phase enum (every one has ``Pending`` and ``Failed``)."""
Obj = dict[str, Any]


def accept(ctx: HandlerContext, info: KindInfo, body: Any) -> None:
    """Validate ``body``'s spec and record that it was accepted."""
    parse_spec(info.spec_model, body.get("spec"))
    phases = ACCEPTING_KINDS[info.kind]
    meta = body["metadata"]
    generation = meta.get("generation")
    now = ctx.clock()

    def compute(current: Obj) -> Obj:
        status = dict(current.get("status") or {})
        conds = set_condition(
            status.get("conditions"),
            ConditionType.ACCEPTED,
            "True",
            Reason.ACCEPTED,
            f"the spec is valid; the {info.kind} controller picks it up from here",
            generation=generation,
            now=now,
        )
        degraded = find_condition(conds, ConditionType.DEGRADED)
        if degraded is not None and degraded.get("status") == "True":
            conds = set_condition(
                conds, ConditionType.DEGRADED, "False", Reason.RECONCILED, "", generation=generation, now=now
            )
        status["conditions"] = conds
        status.setdefault("phase", phases("Pending"))
        if status.get("phase") == phases("Failed"):
            status["phase"] = phases("Pending")  # was invalid, is valid now
        ready = find_condition(conds, ConditionType.READY)
        if ready is not None and ready.get("reason") == Reason.INVALID_SPEC:
            status["conditions"] = [c for c in conds if c.get("type") != ConditionType.READY]
        status["observedGeneration"] = generation
        return status

    result = write_status(ctx.kube, kind_ref(info), meta["namespace"], meta["name"], compute)
    if result is not None and result.changed and result.old.get("phase") != result.new.get("phase"):
        ctx.post_event(body, "Normal", Reason.ACCEPTED, f"{info.kind} spec accepted")
    ctx.metrics.record_status(info.kind, meta["namespace"], meta["name"], result.new if result else None)


def register_accepting(registry: Any, ctx: HandlerContext) -> None:

    for kind, phases in ACCEPTING_KINDS.items():
        info = KINDS[kind]
        ref = kind_ref(info)

        def handler(
            body: Any,
            retry: int,
            _info: KindInfo = info,
            _ref: Any = ref,
            _failed: str = phases("Failed"),
            **_: Any,
        ) -> None:
            guarded(
                ctx,
                _ref,
                body,
                retry,
                lambda: accept(ctx, _info, body),
                invalid_phase=_failed,
                extra_false=(ConditionType.ACCEPTED,),
            )

        on_spec(registry, info.plural, f"accept-{info.plural}", handler)
