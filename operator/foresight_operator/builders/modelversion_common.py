"""Pieces every ModelVersion builder shares: labels, the version tag, metrics and the manifest.

ModelVersions are made by more than one kind (a Succeeded TrainingJob, a ForecastTask's training
run); each has its own builder module, and what they have in common lives here so the registry
sees one shape whichever kind produced the model. Pure: no client calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from foresight.api.meta import API_VERSION
from foresight.api.modelversion import MODEL_VERSION, ModelVersionSpec

from ..reconcile.names import MANAGED_BY, MANAGED_BY_LABEL

__all__ = [
    "MODEL_NAME_LABEL",
    "model_version_manifest",
    "numeric_metrics",
    "promql_dataset",
    "version_tag",
]

MODEL_NAME_LABEL = "foresight.dev/model-name"


def version_tag(when: datetime, token: str) -> str:
    """``spec.version``: a time (sorts by age) plus a short token that makes it unique."""
    return f"{when:%Y%m%d.%H%M%S}-{token}"


def promql_dataset(url: str, query: str) -> str:
    """``spec.lineage.dataset`` of a model trained on a PromQL query."""
    return f"promql+{url}?query={query}"


def numeric_metrics(values: Mapping[str, Any]) -> dict[str, float]:
    """The numeric entries of ``values`` (``spec.metrics`` holds floats; None, text and bools go)."""
    return {
        str(k): float(v) for k, v in values.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }


def model_version_manifest(
    name: str,
    namespace: str,
    spec: ModelVersionSpec,
    *,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
) -> dict[str, Any]:
    """The ModelVersion object: ``spec`` (already validated by pydantic) plus managed-by and model labels."""
    return {
        "apiVersion": API_VERSION,
        "kind": MODEL_VERSION.kind,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY, **labels, MODEL_NAME_LABEL: spec.model_name},
            "annotations": dict(annotations),
        },
        "spec": spec.to_wire(),
    }
