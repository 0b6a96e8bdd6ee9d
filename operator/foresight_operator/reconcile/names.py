"""Deterministic names and labels of the children a resource owns.

A child's name depends only on its owner's name and a fixed suffix, so a handler that runs twice,
or an operator restarted half-way, finds the child it made before instead of making another.
"""

from __future__ import annotations

import hashlib
import re

__all__ = [
    "KIND_LABEL",
    "MANAGED_BY",
    "MANAGED_BY_LABEL",
    "NAME_LABEL",
    "child_name",
    "owner_labels",
    "owner_selector",
]

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "foresight"
KIND_LABEL = "foresight.dev/kind"
NAME_LABEL = "foresight.dev/name"
DNS_LABEL_MAX = 63


def _dns_label(text: str) -> str:
    # Owner names may be DNS subdomains (dots); children such as Jobs and Services need labels.
    return re.sub(r"[^a-z0-9-]", "-", text.lower())


def child_name(owner: str, suffix: str, limit: int = DNS_LABEL_MAX) -> str:
    """``<owner>-<suffix>``; when longer than ``limit``, the owner part is cut and a hash added.

    The hash is of the full name, so two long owners with the same prefix still get different
    children, and the result is the same on every call.
    """
    base = _dns_label(f"{owner}-{suffix}")
    if len(base) <= limit:
        return base
    digest = hashlib.sha256(f"{owner}/{suffix}".encode()).hexdigest()[:8]
    room = limit - len(suffix) - len(digest) - 2
    if room < 1:
        raise ValueError(f"suffix {suffix!r} leaves no room for the owner name within {limit} characters")
    head = _dns_label(owner)[:room].rstrip("-") or "x"
    return f"{head}-{digest}-{_dns_label(suffix)}"


def _label_value(value: str) -> str:
    # A label value is at most 63 characters; long owner names get the same cut-and-hash treatment.
    if len(value) <= DNS_LABEL_MAX:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:8]
    return f"{value[: DNS_LABEL_MAX - 9].rstrip('-.')}-{digest}"


def owner_labels(kind: str, name: str) -> dict[str, str]:
    """The labels that tie a child to its owner (and let ``kubectl get -l`` find them)."""
    return {MANAGED_BY_LABEL: MANAGED_BY, KIND_LABEL: kind, NAME_LABEL: _label_value(name)}


def owner_selector(kind: str, name: str) -> str:
    """A label selector for every child of one owner."""
    return ",".join(f"{k}={v}" for k, v in owner_labels(kind, name).items())
