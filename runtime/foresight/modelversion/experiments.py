"""``foresight ab status | promote``: an ABExperiment's answer, and making its winner permanent.

The operator routes all traffic to a promoted winner through the service's routing ConfigMap, but
never writes a spec (Argo CD owns them). What makes the winner permanent is a spec change, listed
in the experiment's ``status.promotion``: the ClassifierService serves the winner's ModelVersion
(``spec.backend.onnx.modelVersion``), and that ModelVersion becomes its model's Production version
(``spec.stage``). ``promote NAME`` prints those changes (to commit in Git, or as ``kubectl patch``
commands); ``promote NAME --apply`` makes them as a user would: a merge patch of the service's
spec, and ``foresight models promote`` for the ModelVersion (which archives the previous
Production version and records the history). Then the experiment can be deleted: the service's
pods roll to its own (new) model.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from .manage import Client, ModelsError, ModelVersions

__all__ = ["Experiments", "promotion_text", "run", "status_text"]

Obj = dict[str, Any]


def _refs() -> tuple[Any, Any]:
    from foresight.api import AB_EXPERIMENT, CLASSIFIER_SERVICE
    from foresight.api.meta import API_VERSION
    from foresight.kube import ResourceRef

    return (
        ResourceRef(API_VERSION, AB_EXPERIMENT.plural, AB_EXPERIMENT.kind),
        ResourceRef(API_VERSION, CLASSIFIER_SERVICE.plural, CLASSIFIER_SERVICE.kind),
    )


class Experiments:
    """ABExperiment reads and promotions in one namespace."""

    def __init__(self, client: Client, namespace: str) -> None:
        self.client = client
        self.namespace = namespace

    def get(self, name: str) -> Obj:
        exp = self.client.get(_refs()[0], name, self.namespace)
        if exp is None:
            raise ModelsError(
                f"ABExperiment {self.namespace}/{name} not found: `kubectl get ab -n {self.namespace}` "
                "shows what exists"
            )
        return exp

    def promotion(self, name: str) -> Obj:
        """``status.promotion`` of the experiment, or a ModelsError saying why there is none."""
        exp = self.get(name)
        status = exp.get("status") or {}
        promotion = status.get("promotion")
        if promotion:
            return dict(promotion)
        control = ((exp.get("spec") or {}).get("variants") or [{}])[0].get("name")
        winner = status.get("winner")
        if winner and winner == control:
            raise ModelsError(
                f"the control {control!r} won: nothing to change; delete the experiment to end it "
                "(the service keeps serving its own model)"
            )
        phase = status.get("phase") or "not analysed yet"
        raise ModelsError(
            f"ABExperiment {self.namespace}/{name} has no winner to promote (phase {phase}); "
            f"`foresight ab status {name} -n {self.namespace}` shows the evidence so far"
        )

    def apply(self, name: str) -> list[str]:
        """Make the promotion's spec changes; returns what changed, one line each."""
        promotion = self.promotion(name)
        _, services = _refs()
        lines = []
        for change in promotion.get("changes") or []:
            if change.get("kind") == "ClassifierService":
                patch = json.loads(change["patch"])
                self.client.patch(services, change["name"], self.namespace, patch)
                lines.append(f"ClassifierService {change['name']}: {change['patch']}")
        lines += ModelVersions(self.client, self.namespace).promote(str(promotion["modelVersion"]))
        return lines


def promotion_text(name: str, namespace: str, promotion: Mapping[str, Any]) -> str:
    """The changes as a reader commits them: the spec fields, and the equivalent kubectl commands."""
    out = [
        f"# ABExperiment {namespace}/{name}: {promotion['winner']} ({promotion['modelVersion']}) won.",
        f"# Commit these spec changes (in Git), or run `foresight ab promote {name} -n {namespace} --apply`:",
    ]
    plurals = {"ClassifierService": "classifierservices", "ModelVersion": "modelversions"}
    for change in promotion.get("changes") or []:
        out.append(f"#   {change['kind']} {change['name']}: {change['patch']}")
    for change in promotion.get("changes") or []:
        plural = plurals.get(change["kind"], change["kind"].lower())
        out.append(
            f"kubectl -n {namespace} patch {plural} {change['name']} --type merge -p '{change['patch']}'"
        )
    return "\n".join(out) + "\n"


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]


def status_text(exp: Mapping[str, Any]) -> str:
    """A reader's summary of ``status``: phase, weights, variants, comparisons, guards, decisions."""
    meta, status = exp.get("metadata") or {}, exp.get("status") or {}
    ready: Mapping[str, Any] = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {}
    )
    lines = [
        f"ABExperiment {meta.get('namespace')}/{meta.get('name')}: {status.get('phase') or 'Pending'}"
        f" ({ready.get('reason', '-')}): {ready.get('message', '')}",
        f"weights: {status.get('weights') or '-'}   winner: {status.get('winner') or '-'}"
        f"   next analysis: {status.get('nextAnalysisTime') or '-'}",
    ]
    variants = status.get("variants") or []
    if variants:
        rows = [
            [str(v.get("name")), str(v.get("weight")), _fmt(v.get("samples"), 6), _fmt(v.get("mean")),
             f"[{_fmt(v.get('ciLow'))}, {_fmt(v.get('ciHigh'))}]"]
            for v in variants
        ]  # fmt: skip
        lines += ["", *_table(["VARIANT", "WEIGHT", "SAMPLES", "MEAN", "CI"], rows)]
    comparisons = status.get("comparisons") or []
    if comparisons:
        rows = [
            [str(c.get("metric")), str(c.get("candidate")), _fmt(c.get("difference")),
             f"[{_fmt(c.get('csLow'))}, {_fmt(c.get('csHigh'))}]", _fmt(c.get("adjustedPValue")),
             _fmt(c.get("fixedPValue")), _fmt(c.get("effectSize")), str(c.get("verdict"))]
            for c in comparisons
        ]  # fmt: skip
        header = ["METRIC", "CANDIDATE", "DIFF", "CONF.SEQUENCE", "P(HOLM)", "P(1-LOOK)", "EFFECT", "VERDICT"]
        lines += ["", *_table(header, rows)]
    guards = status.get("guards") or []
    if guards:
        rows = [
            [str(g.get("guard")), str(g.get("variant")), str(g.get("status")), _fmt(g.get("value")),
             _fmt(g.get("controlValue")), _fmt(g.get("pPass")), _fmt(g.get("pBreach"))]
            for g in guards
        ]  # fmt: skip
        lines += [
            "",
            *_table(["GUARD", "VARIANT", "STATUS", "VALUE", "CONTROL", "P(PASS)", "P(BREACH)"], rows),
        ]
    size = status.get("sampleSize")
    if size:
        lines += ["", f"required samples (sequential): {size.get('sequential')}; now {size.get('current')}; "
                  f"ETA {size.get('eta') or '-'}"]  # fmt: skip
    srm = status.get("srm")
    if srm:
        lines.append(f"sample ratio: p={_fmt(srm.get('pValue'))}{' MISMATCH' if srm.get('mismatch') else ''}")
    decisions = status.get("decisions") or []
    if decisions:
        lines += ["", "decisions:"]
        lines += [
            f"  {d.get('time')}  {d.get('action')}  {d.get('reason')}: {d.get('message')}" for d in decisions
        ]
    return "\n".join(lines) + "\n"


def run(args: Any, *, stdout: TextIO = sys.stdout, stderr: TextIO = sys.stderr) -> int:
    """``foresight ab status | promote`` from parsed arguments."""
    from foresight.kube import KubeApiError, connect

    try:
        client, default_ns = connect(args.kubeconfig, args.context, user_agent="foresight-ab")
        namespace = args.namespace or default_ns
        exps = Experiments(client, namespace)
        if args.ab_action == "status":
            stdout.write(status_text(exps.get(args.name)))
        elif args.apply:
            for line in exps.apply(args.name):
                stdout.write(line + "\n")
        else:
            stdout.write(promotion_text(args.name, namespace, exps.promotion(args.name)))
    except ModelsError as exc:
        stderr.write(f"error: {exc}\n")
        return 1
    except KubeApiError as exc:
        stderr.write(f"error: the Kubernetes API refused or failed ({exc}); check the kubeconfig and RBAC\n")
        return 1
    return 0
