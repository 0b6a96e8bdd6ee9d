"""Create-or-patch of children, safe to repeat: look up by name first, tolerate AlreadyExists.

Children have deterministic names (:func:`~foresight_operator.reconcile.names.child_name`), so
a second run of a handler, or a run after a restart half-way through, finds what the first one
made; a 409 on create (another run got there first) reads the existing object instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from foresight.api.meta import Reason
from foresight.kube import KubeApiError, KubeClient, ResourceRef

from .errors import WaitError

__all__ = ["UpdateFn", "ensure_child", "get_or_create", "owned_by"]

Obj = dict[str, Any]
UpdateFn = Callable[[Obj, Obj], Obj | None]
"""``(desired, existing) -> merge patch or None``: what to change on an existing child."""


def owned_by(obj: Obj, owner_uid: str) -> bool:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("uid") == owner_uid for ref in refs)


def _label_patch(desired: Obj, existing: Obj) -> Obj | None:
    want = (desired.get("metadata") or {}).get("labels") or {}
    have = (existing.get("metadata") or {}).get("labels") or {}
    missing = {k: v for k, v in want.items() if have.get(k) != v}
    return {"metadata": {"labels": missing}} if missing else None


def ensure_child(
    kube: KubeClient,
    ref: ResourceRef,
    desired: Obj,
    *,
    owner_uid: str,
    update: UpdateFn | None = None,
) -> tuple[Obj, bool]:
    """Make sure ``desired`` exists; return ``(object, created)``.

    An existing child owned by ``owner_uid`` gets the patch ``update`` returns (plus any of our
    labels it lost). A child of the same name that belongs to someone else, or is being deleted,
    is never touched: that raises :class:`WaitError`, retried later.
    """
    meta = desired["metadata"]
    name, namespace = meta["name"], meta.get("namespace")
    existing = kube.get(ref, name, namespace)
    if existing is None:
        try:
            return kube.create(ref, desired, namespace), True
        except KubeApiError as exc:
            if exc.status != 409:
                raise
            existing = kube.get(ref, name, namespace)
            if existing is None:
                raise WaitError(
                    f"{ref.kind} {namespace}/{name} was created and deleted at once; retrying",
                    reason=Reason.CHILD_CONFLICT,
                ) from exc
    emeta = existing.get("metadata") or {}
    if emeta.get("deletionTimestamp"):
        raise WaitError(
            f"{ref.kind} {namespace}/{name} is being deleted; it will be recreated once gone",
            reason=Reason.CHILD_TERMINATING,
            delay=2,
        )
    if not owned_by(existing, owner_uid):
        raise WaitError(
            f"{ref.kind} {namespace}/{name} already exists and is not owned by this resource: delete it "
            "or rename this resource",
            reason=Reason.CHILD_CONFLICT,
        )
    patch = _label_patch(desired, existing) or {}
    extra = update(desired, existing) if update else None
    if extra:
        patch = _merge(patch, extra)
    if patch:
        existing = kube.patch(ref, name, namespace, patch)
    return existing, False


def get_or_create(kube: KubeClient, ref: ResourceRef, desired: Obj) -> tuple[Obj, bool]:
    """The object named like ``desired`` (created from it when missing); ``(object, created)``.

    For objects the resource does not own (a trained model's ModelVersion outlives its maker), so
    there is no owner to check: the caller compares what it found with what it wanted.
    """
    meta = desired["metadata"]
    name, namespace = meta["name"], meta.get("namespace")
    existing = kube.get(ref, name, namespace)
    if existing is not None:
        return existing, False
    try:
        return kube.create(ref, desired, namespace), True
    except KubeApiError as exc:
        if not exc.conflict:
            raise
    # Someone made it between the read and the create: theirs (or, gone again at once, ours).
    return kube.get(ref, name, namespace) or desired, False


def _merge(a: Obj, b: Obj) -> Obj:
    out = dict(a)
    for key, value in b.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out
