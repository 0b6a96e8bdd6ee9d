"""``build_configmap``: a ConfigMap holding a resource's run configuration (mounted as files)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["build_configmap"]


def build_configmap(
    *, name: str, namespace: str, labels: Mapping[str, str], data: Mapping[str, str]
) -> dict[str, Any]:
    """One file per key; the caller renders the content (YAML / JSON) and adopts the object."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "data": dict(data),
    }
