"""``foresight models``: the ModelVersions of a cluster seen from a laptop (kubeconfig or in-cluster).

``list``, ``show``, ``compare``, ``best`` read ModelVersions. ``promote`` and ``rollback`` act as a
user would: they patch ``spec.stage`` (the operator never writes specs; it only computes
``status.production``), so the result is the same as editing the YAML in Git, and an Argo CD
that owns the specs will show the drift. History lives in annotations this command writes on the
specs it patches:

- ``foresight.dev/previous-production`` on a promoted version: the version it replaced;
- ``foresight.dev/promoted-at`` / ``foresight.dev/demoted-at``: when it entered / left Production.

``rollback MODEL`` re-promotes the current Production version's ``previous-production`` (or, when
none is Production, the most recently demoted version) and archives the current one, without
rewriting the re-promoted version's own history, so a second rollback goes one step further back.

Order of the patches: the old Production version is archived *before* the new one is promoted,
so two versions never both say Production (the operator would flag that as a conflict).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TextIO

from foresight.console import table

__all__ = [
    "DEMOTED_AT",
    "PREVIOUS_PRODUCTION",
    "PROMOTED_AT",
    "ModelVersions",
    "ModelsError",
    "best_version",
    "compare_table",
    "list_table",
]

Obj = dict[str, Any]
PREVIOUS_PRODUCTION = "foresight.dev/previous-production"
PROMOTED_AT = "foresight.dev/promoted-at"
DEMOTED_AT = "foresight.dev/demoted-at"


class ModelsError(Exception):
    """A ``foresight models`` request that cannot be done as asked; the message says what to do."""


class Client(Protocol):
    """What this module needs of :class:`foresight.kube.KubeClient`."""

    def get(self, ref: Any, name: str, namespace: str | None) -> Obj | None: ...

    def list(self, ref: Any, namespace: str | None, *, label_selector: str | None = None) -> list[Obj]: ...

    def patch(self, ref: Any, name: str, namespace: str | None, patch: Any) -> Obj: ...


def _ref() -> Any:
    from foresight.api.meta import API_VERSION
    from foresight.kube import ResourceRef

    return ResourceRef(API_VERSION, "modelversions", "ModelVersion")


def _spec(mv: Mapping[str, Any]) -> Obj:
    return dict(mv.get("spec") or {})


def _status(mv: Mapping[str, Any]) -> Obj:
    return dict(mv.get("status") or {})


def _name(mv: Mapping[str, Any]) -> str:
    return str((mv.get("metadata") or {}).get("name"))


def _annotations(mv: Mapping[str, Any]) -> dict[str, str]:
    return dict((mv.get("metadata") or {}).get("annotations") or {})


def _ready(mv: Mapping[str, Any]) -> str:
    for cond in _status(mv).get("conditions") or []:
        if cond.get("type") == "Ready":
            return str(cond.get("status"))
    return "Unknown"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def list_table(versions: Sequence[Mapping[str, Any]]) -> str:
    """``kubectl get``-like table: name, model, version, stage, production, ready, size, metrics."""
    rows = []
    for mv in sorted(versions, key=lambda m: (_spec(m).get("modelName", ""), _name(m))):
        spec, status = _spec(mv), _status(mv)
        metrics = ",".join(f"{k}={_fmt(v)}" for k, v in sorted((spec.get("metrics") or {}).items()))
        rows.append(
            [
                _name(mv),
                str(spec.get("modelName", "")),
                str(spec.get("version", "")),
                str(spec.get("stage", "None")),
                "yes" if status.get("production") else "",
                _ready(mv),
                _fmt(status.get("sizeBytes")),
                metrics or "-",
            ]
        )
    return table(["NAME", "MODEL", "VERSION", "STAGE", "PRODUCTION", "READY", "SIZE", "METRICS"], rows) + "\n"


def compare_table(versions: Sequence[Mapping[str, Any]]) -> str:
    """Metrics (and status figures) side by side: one row per metric, one column per version."""
    if not versions:
        raise ModelsError("nothing to compare: name two or more ModelVersions, or a model with versions")
    metric_names = sorted({k for mv in versions for k in (_spec(mv).get("metrics") or {})})
    rows = [["stage", *(str(_spec(mv).get("stage", "None")) for mv in versions)]]
    rows += [[m, *(_fmt((_spec(mv).get("metrics") or {}).get(m)) for mv in versions)] for m in metric_names]
    rows.append(["sizeBytes", *(_fmt(_status(mv).get("sizeBytes")) for mv in versions)])
    rows.append(["parityMaxAbsDiff", *(_fmt(_status(mv).get("parityMaxAbsDiff")) for mv in versions)])
    for runtime in ("eager", "onnx", "onnx-int8"):
        cells = []
        for mv in versions:
            lat = [e for e in _status(mv).get("latency") or [] if e.get("runtime") == runtime]
            cells.append(",".join(f"b{e['batchSize']}:{_fmt(e['p50Ms'])}" for e in lat) or "-")
        if any(c != "-" for c in cells):
            rows.append([f"p50Ms {runtime}", *cells])
    return table(["", *(_name(mv) for mv in versions)], rows) + "\n"


def best_version(versions: Sequence[Mapping[str, Any]], metric: str, *, minimize: bool) -> Obj:
    """The version with the best ``spec.metrics[metric]`` (ties: the newer name wins deterministically)."""
    scored = [
        (float(_spec(mv)["metrics"][metric]), _name(mv), dict(mv))
        for mv in versions
        if isinstance((_spec(mv).get("metrics") or {}).get(metric), int | float)
    ]
    if not scored:
        have = sorted({k for mv in versions for k in (_spec(mv).get("metrics") or {})})
        raise ModelsError(f"no version has metric {metric!r}; metrics present: {have or 'none'}")
    scored.sort(key=lambda t: (t[0], t[1]))
    return scored[0][2] if minimize else scored[-1][2]


@dataclass
class ModelVersions:
    """ModelVersion operations in one namespace through a Kubernetes client."""

    client: Client
    namespace: str
    clock: Callable[[], datetime] = lambda: datetime.now(tz=UTC)

    def versions(self, model: str | None = None) -> list[Obj]:
        items = self.client.list(_ref(), self.namespace)
        return [mv for mv in items if model is None or _spec(mv).get("modelName") == model]

    def get(self, name: str) -> Obj:
        mv = self.client.get(_ref(), name, self.namespace)
        if mv is None:
            raise ModelsError(
                f"ModelVersion {self.namespace}/{name} not found: "
                f"`foresight models list -n {self.namespace}` shows what exists"
            )
        return mv

    def _now(self) -> str:
        return self.clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _patch(self, name: str, stage: str, annotations: Mapping[str, str]) -> Obj:
        body: Obj = {"spec": {"stage": stage}}
        if annotations:
            body["metadata"] = {"annotations": dict(annotations)}
        return self.client.patch(_ref(), name, self.namespace, body)

    def _production(self, model: str) -> list[Obj]:
        return [mv for mv in self.versions(model) if _spec(mv).get("stage") == "Production"]

    def promote(self, name: str) -> list[str]:
        """Make ``name`` its model's Production version; returns what changed, one line each."""
        target = self.get(name)
        model = str(_spec(target).get("modelName"))
        current = [mv for mv in self._production(model) if _name(mv) != name]
        if _spec(target).get("stage") == "Production" and not current:
            return [f"{name} is already the Production version of {model}"]
        now = self._now()
        changes = []
        for old in current:
            self._patch(_name(old), "Archived", {DEMOTED_AT: now})
            changes.append(f"{_name(old)}: Production -> Archived")
        annotations = {PROMOTED_AT: now}
        if current:
            # Several Production versions (a conflict) leave the newest-promoted as the one to go back to.
            previous = max(current, key=lambda mv: _annotations(mv).get(PROMOTED_AT, ""))
            annotations[PREVIOUS_PRODUCTION] = _name(previous)
        self._patch(name, "Production", annotations)
        changes.append(f"{name}: {_spec(target).get('stage', 'None')} -> Production")
        return changes

    def rollback(self, model: str) -> list[str]:
        """Re-promote the version that was Production before the current one; returns the changes."""
        versions = {_name(mv): mv for mv in self.versions(model)}
        if not versions:
            raise ModelsError(f"model {model!r} has no ModelVersions in namespace {self.namespace}")
        current = [mv for mv in versions.values() if _spec(mv).get("stage") == "Production"]
        target: Obj | None = None
        if current:
            newest = max(current, key=lambda mv: _annotations(mv).get(PROMOTED_AT, ""))
            previous = _annotations(newest).get(PREVIOUS_PRODUCTION)
            if previous is None:
                raise ModelsError(
                    f"{_name(newest)} is Production but no earlier Production version is recorded "
                    f"(annotation {PREVIOUS_PRODUCTION}); promote the version you want with "
                    "`foresight models promote NAME`"
                )
            target = versions.get(previous)
            if target is None:
                raise ModelsError(
                    f"{_name(newest)} replaced {previous}, which no longer exists; promote another "
                    "version with `foresight models promote NAME`"
                )
        else:
            demoted = [mv for mv in versions.values() if DEMOTED_AT in _annotations(mv)]
            if not demoted:
                raise ModelsError(f"model {model!r} has never had a Production version to go back to")
            target = max(demoted, key=lambda mv: _annotations(mv)[DEMOTED_AT])
        now = self._now()
        changes = []
        for old in current:
            if _name(old) != _name(target):
                self._patch(_name(old), "Archived", {DEMOTED_AT: now})
                changes.append(f"{_name(old)}: Production -> Archived (rolled back)")
        # The target keeps its own previous-production: a second rollback goes further back.
        self._patch(_name(target), "Production", {PROMOTED_AT: now})
        changes.append(f"{_name(target)}: {_spec(target).get('stage', 'None')} -> Production")
        return changes


def run(args: Any, *, stdout: TextIO = sys.stdout, stderr: TextIO = sys.stderr) -> int:
    """Dispatch one ``foresight models`` action from parsed arguments."""
    import yaml

    from foresight.kube import KubeApiError, connect

    try:
        client, default_ns = connect(args.kubeconfig, args.context, user_agent="foresight-models")
        reg = ModelVersions(client, args.namespace or default_ns)
        action = args.models_action
        if action == "list":
            stdout.write(list_table(reg.versions(args.model)))
        elif action == "show":
            mv = reg.get(args.name)
            shown = {"name": _name(mv), "spec": _spec(mv), "status": _status(mv)}
            if _annotations(mv):
                shown["annotations"] = {
                    k: v for k, v in _annotations(mv).items() if k.startswith("foresight.dev/")
                }
            stdout.write(
                yaml.safe_dump(shown, sort_keys=False)
                if args.output == "yaml"
                else json.dumps(shown, indent=2) + "\n"
            )
        elif action == "compare":
            versions = [reg.get(n) for n in args.names] if args.names else reg.versions(args.model)
            if args.model and args.names:
                versions = [mv for mv in versions if _spec(mv).get("modelName") == args.model]
            stdout.write(compare_table(versions))
        elif action == "best":
            best = best_version(reg.versions(args.model), args.metric, minimize=args.min)
            value = _spec(best)["metrics"][args.metric]
            stdout.write(f"{_name(best)}\t{args.metric}={_fmt(float(value))}\n")
        elif action == "promote":
            for line in reg.promote(args.name):
                stdout.write(line + "\n")
        elif action == "rollback":
            for line in reg.rollback(args.model_name):
                stdout.write(line + "\n")
        else:  # pragma: no cover - argparse restricts the choices
            raise ModelsError(f"unknown action {action!r}")
    except ModelsError as exc:
        stderr.write(f"error: {exc}\n")
        return 1
    except KubeApiError as exc:
        stderr.write(f"error: the Kubernetes API refused or failed ({exc}); check the kubeconfig and RBAC\n")
        return 1
    return 0
