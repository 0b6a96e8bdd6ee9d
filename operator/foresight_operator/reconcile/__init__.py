"""Reconcile machinery every kind uses: child names and labels, create-or-patch of children and
what to patch, conditions, status writes with optimistic concurrency, the permanent / temporary
error split, Jobs and their pods' termination messages, Secrets to wait for, our kinds' API refs.
"""

from __future__ import annotations

from .children import ensure_child, get_or_create, owned_by
from .conditions import find_condition, format_time, parse_time, set_condition
from .errors import ReconcileError, SpecError, WaitError
from .jobs import JOB_NAME_LABEL, JobState, job_pods, job_state, pods_worth_reading, true_condition
from .kinds import (
    CLASSIFIER_SERVICES,
    FORECAST_TASKS,
    MODEL_LIBRARIES,
    MODEL_VERSIONS,
    TRAINING_JOBS,
    kind_ref,
)
from .names import (
    KIND_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    NAME_LABEL,
    child_name,
    owner_labels,
    owner_selector,
)
from .secrets import require_secrets
from .status import StatusWrite, merge_diff, write_status

__all__ = [
    "CLASSIFIER_SERVICES",
    "FORECAST_TASKS",
    "JOB_NAME_LABEL",
    "KIND_LABEL",
    "MANAGED_BY",
    "MANAGED_BY_LABEL",
    "MODEL_LIBRARIES",
    "MODEL_VERSIONS",
    "NAME_LABEL",
    "TRAINING_JOBS",
    "JobState",
    "ReconcileError",
    "SpecError",
    "StatusWrite",
    "WaitError",
    "child_name",
    "ensure_child",
    "find_condition",
    "format_time",
    "get_or_create",
    "job_pods",
    "job_state",
    "kind_ref",
    "merge_diff",
    "owned_by",
    "owner_labels",
    "owner_selector",
    "parse_time",
    "pods_worth_reading",
    "require_secrets",
    "set_condition",
    "true_condition",
    "write_status",
]
