"""What to change on an existing child: the update functions :func:`~.children.ensure_child` takes.

Each gets ``(desired, existing)`` and returns a merge patch, or ``None`` when nothing the operator
owns differs, so a repeated reconcile makes no write and never fights server-side defaults.
"""

from __future__ import annotations

from typing import Any

from .status import merge_diff

__all__ = [
    "SPEC_HASH_ANNOTATION",
    "configmap_update",
    "deployment_update",
    "replace_spec_update",
    "service_update",
    "suspend_update",
]

Obj = dict[str, Any]
SPEC_HASH_ANNOTATION = "foresight.dev/spec-sha256"
"""On a Deployment the operator keeps: the SHA-256 of the spec it wants (set by the builder)."""


def configmap_update(desired: Obj, existing: Obj) -> Obj | None:
    """The data, when it differs (keys the desired data no longer has are removed)."""
    want, have = desired.get("data") or {}, existing.get("data") or {}
    return {"data": merge_diff(have, want)} if want != have else None


def deployment_update(desired: Obj, existing: Obj, *, manage_replicas: bool = True) -> Obj | None:
    """Template and strategy when the spec hash differs; replicas whenever they differ.

    ``manage_replicas=False`` leaves the count to an HPA (the desired replicas only start it).
    """
    want_hash = desired["metadata"]["annotations"][SPEC_HASH_ANNOTATION]
    have_hash = ((existing.get("metadata") or {}).get("annotations") or {}).get(SPEC_HASH_ANNOTATION)
    dspec, espec = desired["spec"], existing.get("spec") or {}
    patch: Obj = {}
    if want_hash != have_hash:
        # merge_diff nulls what the desired spec no longer has (a removed env var, volume or
        # nodeSelector, the rollingUpdate block of a Recreate strategy); server defaults it nulls
        # come back as defaults.
        patch["spec"] = {
            key: merge_diff(espec.get(key) or {}, dspec[key])
            for key in ("template", "strategy")
            if key in dspec
        }
        patch["metadata"] = {"annotations": {SPEC_HASH_ANNOTATION: want_hash}}
    if manage_replicas and espec.get("replicas") != dspec["replicas"]:
        patch.setdefault("spec", {})["replicas"] = dspec["replicas"]
    return patch or None


def _service_shape(obj: Obj) -> tuple[Any, Any]:
    spec = obj.get("spec") or {}
    ports = [(p.get("name"), p.get("port"), p.get("targetPort")) for p in spec.get("ports") or []]
    return ports, spec.get("selector")


def service_update(desired: Obj, existing: Obj) -> Obj | None:
    """Ports, selector and the desired annotations (``prometheus.io/*``), when they differ."""
    patch: Obj = {}
    want_ann = (desired.get("metadata") or {}).get("annotations") or {}
    have_ann = (existing.get("metadata") or {}).get("annotations") or {}
    if any(have_ann.get(k) != v for k, v in want_ann.items()):
        patch["metadata"] = {"annotations": want_ann}
    if _service_shape(desired) != _service_shape(existing):
        patch["spec"] = {"ports": desired["spec"]["ports"], "selector": desired["spec"]["selector"]}
    return patch or None


def suspend_update(desired: Obj, existing: Obj) -> Obj | None:
    """``spec.suspend``: the one knob of a Job (or RayJob) that may change after creation (its pod
    template is immutable)."""
    want = bool(desired["spec"].get("suspend"))
    return {"spec": {"suspend": want}} if bool((existing.get("spec") or {}).get("suspend")) != want else None


def replace_spec_update(desired: Obj, existing: Obj) -> Obj | None:
    """The whole desired spec, when any field of it differs (an HPA: small, and all ours)."""
    have = existing.get("spec") or {}
    return None if all(have.get(k) == v for k, v in desired["spec"].items()) else {"spec": desired["spec"]}
