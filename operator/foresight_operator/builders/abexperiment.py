"""ABExperiment: what the controller writes, built from a decision (pure: no client calls, no clock).

- :func:`routing_owner`: which of the ABExperiments naming a service routes it (the oldest live
  one); the ClassifierService controller loads that one's variants, the others get a condition;
- :func:`build_routing`: the routing ConfigMap (:mod:`foresight.contract.experiment`) with the
  effective weights, owned by the ClassifierService (it is the service's serving config: it stays
  while the pods still load the variants, and goes with the service);
- :func:`experiment_status`: the status after an analysis: phase, the ``Ready`` condition, per
  variant n / mean / CI / weight, the comparisons, guards, required samples and ETA, the
  sample-ratio check, the decision history (capped) and counts, what to commit, and the
  analysis's state for the next interval;
- :func:`promotion`: the spec changes that make a winner permanent (``foresight ab promote``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from foresight.api.abexperiment import (
    MAX_DECISIONS,
    ABExperimentSpec,
    ExperimentPhase,
    ExperimentReason,
)
from foresight.api.meta import ConditionType
from foresight.contract.experiment import ROUTING_FILE, RoutedVariant, Routing, routing_configmap_name
from foresight.experiment.decision import Action, Decision, Evidence, Phase, Reason

from ..reconcile import format_time, set_condition
from .configmap import build_configmap

__all__ = [
    "READY_REASONS",
    "build_routing",
    "experiment_status",
    "promotion",
    "read_routing",
    "ready_condition",
    "ready_from_record",
    "routing_owner",
    "weights_text",
]

Obj = dict[str, Any]

READY_REASONS = frozenset(
    {Reason.WINNER_FOUND, Reason.CONTROL_WINS, Reason.NO_DIFFERENCE, Reason.STEPS_COMPLETED}
)
"""Decision reasons after which the experiment has an answer (``Ready=True``; Argo CD: Healthy)."""
_QUIET = (Action.HOLD, Action.NO_DATA)


def routing_owner(
    experiments: Iterable[Mapping[str, Any]], service: str, incumbent: Routing | None = None
) -> Mapping[str, Any] | None:
    """The ABExperiment that routes ``service``: the one its routing ConfigMap names (``incumbent``)
    while it lives, else the oldest one naming the service that is not being deleted (creation
    times have one-second resolution: the name breaks a tie)."""
    live = [
        e
        for e in experiments
        if (e.get("spec") or {}).get("service") == service
        and not (e.get("metadata") or {}).get("deletionTimestamp")
    ]
    if incumbent is not None:
        for e in live:
            if f"{e['metadata'].get('namespace')}/{e['metadata']['name']}" == incumbent.experiment:
                return e
    if not live:
        return None
    return min(live, key=lambda e: (e["metadata"].get("creationTimestamp") or "", e["metadata"]["name"]))


def build_routing(
    *,
    service: str,
    namespace: str,
    labels: Mapping[str, str],
    experiment: str,
    salt: str,
    generation: int,
    stickiness_header: str,
    control: str,
    weights: Mapping[str, int],
    now: datetime,
) -> Obj:
    """The routing ConfigMap of ``service`` with ``weights`` (variant order kept)."""
    routing = Routing(
        experiment=experiment,
        generation=generation,
        salt=salt,
        stickiness_header=stickiness_header,
        control=control,
        variants=[RoutedVariant(name=v, weight=w) for v, w in weights.items()],
        updated=format_time(now),
    )
    text = json.dumps(routing.model_dump(by_alias=True, mode="json"), sort_keys=True, indent=1)
    return build_configmap(
        name=routing_configmap_name(service), namespace=namespace, labels=labels, data={ROUTING_FILE: text}
    )


def read_routing(configmap: Mapping[str, Any] | None) -> Routing | None:
    """The split a routing ConfigMap holds, or ``None`` (absent or unreadable)."""
    raw = ((configmap or {}).get("data") or {}).get(ROUTING_FILE)
    if not raw:
        return None
    try:
        return Routing.model_validate_json(raw)
    except ValueError:
        return None


def weights_text(weights: Mapping[str, int]) -> str:
    """``control=90,candidate=10`` (the WEIGHTS column)."""
    return ",".join(f"{v}={w}" for v, w in weights.items())


def promotion(spec: ABExperimentSpec, winner: str | None, *, namespace: str, name: str) -> Obj | None:
    """The spec changes that make ``winner`` permanent; ``None`` when there is nothing to change."""
    if winner is None or winner == spec.variants[0].name:
        return None
    mv = next(v.model_version for v in spec.variants if v.name == winner)
    service_patch = {"spec": {"backend": {"type": "onnx", "onnx": {"modelVersion": mv}}}}
    return {
        "winner": winner,
        "modelVersion": mv,
        "changes": [
            {"kind": "ClassifierService", "name": spec.service, "patch": json.dumps(service_patch)},
            {"kind": "ModelVersion", "name": mv, "patch": json.dumps({"spec": {"stage": "Production"}})},
        ],
        "command": f"foresight ab promote {name} -n {namespace} --apply",
    }


# --- status ------------------------------------------------------------------------------------


def _num(value: float | None) -> float | None:
    """A JSON-safe number: None for missing, NaN and infinities (the API has neither)."""
    return float(value) if value is not None and math.isfinite(value) else None


def _p(value: float | None) -> float | None:
    v = _num(value)
    return None if v is None else min(1.0, max(0.0, v))


def _variants(spec: ABExperimentSpec, decision: Decision) -> list[Obj]:
    traffic = decision.state.last.traffic if decision.state.last is not None else {}
    by_name = {v.name: v for v in decision.evidence.variants}
    out = []
    for v in spec.variants:
        ev = by_name.get(v.name)
        row: Obj = {
            "name": v.name,
            "modelVersion": v.model_version,
            "weight": int(decision.weights.get(v.name, 0)),
            "samples": round(ev.n, 3) if ev is not None else 0.0,
        }
        if v.name in traffic:
            row["requests"] = round(traffic[v.name], 3)
        if ev is not None:
            for key, value in (("mean", ev.mean), ("ciLow", ev.ci_low), ("ciHigh", ev.ci_high)):
                if _num(value) is not None:
                    row[key] = _num(value)
        out.append(row)
    return out


def _comparisons(evidence: Evidence) -> list[Obj]:
    rows = []
    for c in evidence.comparisons:
        seq, fixed = c.sequential, c.fixed
        row: Obj = {"metric": c.metric, "candidate": c.candidate, "verdict": c.verdict}
        values = {
            "difference": seq.estimate if seq else (fixed.difference if fixed else None),
            "csLow": seq.cs_low if seq else None,
            "csHigh": seq.cs_high if seq else None,
            "effectSize": fixed.effect_size if fixed else None,
        }
        probabilities = {
            "pValue": seq.p_value if seq else None,
            "adjustedPValue": c.adjusted_p_value,
            "fixedPValue": fixed.p_value if fixed else None,
        }
        row.update({k: _num(v) for k, v in values.items() if _num(v) is not None})
        row.update({k: _p(v) for k, v in probabilities.items() if _p(v) is not None})
        if fixed is not None:
            row["test"] = fixed.test
        rows.append(row)
    return rows


def _guards(evidence: Evidence) -> list[Obj]:
    rows = []
    for g in evidence.guards:
        row: Obj = {"guard": g.guard, "variant": g.variant, "status": g.status, "samples": round(g.n, 3)}
        for key, value in (("value", g.value), ("controlValue", g.control_value)):
            if _num(value) is not None:
                row[key] = _num(value)
        for key, value in (("pPass", g.p_pass), ("pBreach", g.p_breach)):
            if _p(value) is not None:
                row[key] = _p(value)
        rows.append(row)
    return rows


def _sample_size(evidence: Evidence, now: datetime) -> Obj | None:
    s = evidence.sample_size
    if s is None:
        return None

    def finite(d: Mapping[str, float]) -> dict[str, float]:
        return {k: float(v) for k, v in d.items() if math.isfinite(v)}

    out: Obj = {
        "metric": s.metric,
        "fixedHorizon": finite(s.fixed_horizon),
        "sequential": finite(s.sequential),
        "current": finite(s.current),
    }
    eta = _num(s.eta_seconds)
    if eta is not None and eta < 10 * 365 * 86400:
        out["etaSeconds"] = round(eta, 1)
        out["eta"] = format_time(now + timedelta(seconds=eta))
    return out


def _srm(evidence: Evidence) -> Obj | None:
    srm = evidence.srm
    if srm is None:
        return None
    return {
        "pValue": _p(srm.p_value) if _p(srm.p_value) is not None else 1.0,
        "mismatch": srm.mismatch,
        "observed": {k: round(v, 3) for k, v in srm.observed.items()},
        "expected": {k: round(v, 3) for k, v in srm.expected.items()},
    }


def _headline(comparisons: Sequence[Obj], primary: str) -> tuple[float | None, float | None]:
    """(pValue, effectSize) of the primary metric's best-supported candidate."""
    rows = [c for c in comparisons if c["metric"] == primary and c.get("adjustedPValue") is not None]
    if not rows:
        return None, None
    best = min(rows, key=lambda c: c["adjustedPValue"])
    return best["adjustedPValue"], best.get("effectSize")


def history_entry(decision: Decision) -> Obj:
    """A ``status.decisions`` entry: the decision and its numbers (non-finite ones left out)."""
    entry = decision.history_entry()
    for key in ("samples", "pValue", "effect"):
        values: Mapping[str, float | None] = entry[key]  # type: ignore[assignment]
        entry[key] = {k: float(v) for k, v in values.items() if v is not None and math.isfinite(v)}
    return entry


def _history(previous: Sequence[Obj], decision: Decision) -> list[Obj]:
    """Append the decision unless it is one more quiet hold with the reason already recorded."""
    history = list(previous)
    last = history[-1] if history else None
    if decision.action in _QUIET and last is not None and last.get("reason") == str(decision.reason):
        return history
    return [*history, history_entry(decision)][-MAX_DECISIONS:]


def ready_from_record(phase: str, reason: str) -> tuple[str, str]:
    """(status, reason) of ``Ready`` for a decision's phase and reason: True once the experiment has
    an answer (a winner, a promotion, or no difference at the samples the effect needs)."""
    answered = phase in (Phase.PROMOTED, Phase.WINNER_FOUND) or reason in READY_REASONS
    if phase in (Phase.ROLLED_BACK, Phase.FAILED, Phase.SUSPENDED):
        answered = False
    return ("True" if answered else "False"), reason


def ready_condition(decision: Decision) -> tuple[str, str]:
    return ready_from_record(str(decision.phase), str(decision.reason))


def experiment_status(
    current: Mapping[str, Any],
    spec: ABExperimentSpec,
    decision: Decision,
    *,
    now: datetime,
    next_analysis: datetime | None,
    state_blob: Obj,
    namespace: str,
    name: str,
) -> Obj:
    """The status of ABExperiment ``current`` after ``decision`` (everything but what it keeps)."""
    status = dict(current.get("status") or {})
    generation = (current.get("metadata") or {}).get("generation")
    ev = decision.evidence
    comparisons = _comparisons(ev)
    p_value, effect = _headline(comparisons, ev.primary)
    variants = _variants(spec, decision)
    counts = dict(status.get("decisionCounts") or {})
    counts[str(decision.action)] = int(counts.get(str(decision.action), 0)) + 1
    ready, reason = ready_condition(decision)
    status.update(
        phase=ExperimentPhase(str(decision.phase)).value,
        weights=weights_text(decision.weights),
        samples=round(sum(v["samples"] for v in variants)),
        variants=variants,
        pValue=p_value,
        effectSize=effect,
        winner=decision.winner,
        currentStep=decision.state.step,
        decision=history_entry(decision),
        comparisons=comparisons,
        guards=_guards(ev),
        sampleSize=_sample_size(ev, now),
        srm=_srm(ev),
        decisions=_history(status.get("decisions") or [], decision),
        decisionCounts=counts,
        promotion=promotion(spec, decision.winner, namespace=namespace, name=name),
        lastAnalysisTime=format_time(now),
        nextAnalysisTime=format_time(next_analysis) if next_analysis is not None else None,
        analysisState=state_blob,
        observedGeneration=generation,
    )
    status["conditions"] = set_condition(
        status.get("conditions"),
        ConditionType.READY,
        ready,
        ExperimentReason(reason).value,
        decision.message[:2000],
        generation=generation,
        now=now,
    )
    return {k: v for k, v in status.items() if v is not None}
