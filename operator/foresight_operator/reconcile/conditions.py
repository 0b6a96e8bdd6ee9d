"""Status conditions, changed only through :func:`set_condition` (the metav1.Condition rules).

``lastTransitionTime`` moves only when ``status`` changes; ``observedGeneration`` records which
``metadata.generation`` the condition was computed from. Pure functions on plain dicts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

__all__ = ["find_condition", "format_time", "parse_time", "set_condition"]

Obj = dict[str, Any]


def format_time(when: datetime) -> str:
    """A status / annotation time: RFC 3339 in UTC, whole seconds (``2026-03-01T06:15:00Z``)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: Any) -> datetime | None:
    """An RFC 3339 time from a status, an annotation or a termination message (UTC), or ``None``."""
    if not text:
        return None
    try:
        return datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def find_condition(conditions: Sequence[Mapping[str, Any]] | None, ctype: str) -> Obj | None:
    for cond in conditions or ():
        if cond.get("type") == ctype:
            return dict(cond)
    return None


def set_condition(
    conditions: Sequence[Mapping[str, Any]] | None,
    ctype: str,
    status: str,
    reason: str,
    message: str,
    *,
    generation: int | None,
    now: datetime,
) -> list[Obj]:
    """A new list with condition ``ctype`` set; the other conditions keep their order and values."""
    if status not in ("True", "False", "Unknown"):
        raise ValueError(f"condition status must be True, False or Unknown, not {status!r}")
    old = find_condition(conditions, ctype)
    changed = old is None or old.get("status") != status
    new: Obj = {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": format_time(now) if changed or old is None else old.get("lastTransitionTime"),
    }
    if generation is not None:
        new["observedGeneration"] = generation
    out: list[Obj] = []
    placed = False
    for cond in conditions or ():
        if cond.get("type") == ctype:
            out.append(new)
            placed = True
        else:
            out.append(dict(cond))
    if not placed:
        out.append(new)
    return out
