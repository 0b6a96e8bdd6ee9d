"""Reconcile machinery every kind uses: child names and labels, create-or-patch of children,
conditions, status writes with optimistic concurrency, and the permanent / temporary error split.
"""

from __future__ import annotations

from .children import ensure_child, owned_by
from .conditions import find_condition, format_time, set_condition
from .errors import ReconcileError, SpecError, WaitError
from .names import (
    KIND_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    NAME_LABEL,
    child_name,
    owner_labels,
    owner_selector,
)
from .status import StatusWrite, merge_diff, write_status

__all__ = [
    "KIND_LABEL",
    "MANAGED_BY",
    "MANAGED_BY_LABEL",
    "NAME_LABEL",
    "ReconcileError",
    "SpecError",
    "StatusWrite",
    "WaitError",
    "child_name",
    "ensure_child",
    "find_condition",
    "format_time",
    "merge_diff",
    "owned_by",
    "owner_labels",
    "owner_selector",
    "set_condition",
    "write_status",
]
