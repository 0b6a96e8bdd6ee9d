"""Writing an owner's status: read, compute, conditional merge patch, retry on conflict.

Several writers touch one resource's status (its own handler, and the handler of its child Job
events); each computes the whole status from what it just read and patches it with the
``resourceVersion`` it read as a precondition, so a write based on stale state fails with 409 and
is recomputed instead of overwriting a newer result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from foresight.api.meta import Reason
from foresight.kube import KubeApiError, KubeClient, ResourceRef

from .errors import WaitError

__all__ = ["StatusWrite", "merge_diff", "write_status"]

Obj = dict[str, Any]


@dataclass(frozen=True)
class StatusWrite:
    """The outcome of :func:`write_status`."""

    body: Obj
    """The object as read before the write."""
    old: Obj
    new: Obj
    changed: bool


def merge_diff(old: Obj, new: Obj) -> Obj:
    """The JSON merge patch that turns ``old`` into ``new`` (removed keys become ``None``)."""
    patch: Obj = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            sub = merge_diff(before, value)
            if sub:
                patch[key] = sub
        elif key not in old or before != value:
            patch[key] = value
    return patch


def write_status(
    kube: KubeClient,
    ref: ResourceRef,
    namespace: str,
    name: str,
    compute: Callable[[Obj], Obj | None],
    *,
    attempts: int = 10,
    current: Obj | None = None,
) -> StatusWrite | None:
    """Set the status of ``ref`` ``namespace/name`` to ``compute(object)``.

    ``compute`` gets the freshly read object and returns the whole new status (or ``None`` to
    leave it). Returns ``None`` when the object does not exist (deleted meanwhile). ``current``:
    the object as the caller just read it, used for the first attempt instead of another read (a
    write based on it fails with 409 if it changed meanwhile, and is retried on a fresh read).
    """
    for attempt in range(attempts):
        body = current if attempt == 0 and current is not None else kube.get(ref, name, namespace)
        if body is None:
            return None
        old = dict(body.get("status") or {})
        new = compute(body)
        if new is None:
            return StatusWrite(body, old, old, False)
        patch = merge_diff(old, new)
        if not patch:
            return StatusWrite(body, old, new, False)
        precondition = {"resourceVersion": body["metadata"]["resourceVersion"]}
        try:
            kube.patch(
                ref, name, namespace, {"metadata": precondition, "status": patch}, subresource="status"
            )
        except KubeApiError as exc:
            if exc.conflict:
                continue
            if exc.not_found:
                return None
            raise
        return StatusWrite(body, old, new, True)
    raise WaitError(
        f"the status of {ref.kind} {namespace}/{name} kept changing while being written; retrying",
        reason=Reason.STATUS_CONFLICT,
        delay=1,
    )
