"""The operator's ModelVersion manifest: the contract's object plus the managed-by label.

ModelVersions are made by more than one kind (a Succeeded TrainingJob, a ForecastTask's training
run); each has its own builder module. What every builder shares, in the cluster and in
``foresight run`` alike (the version tag, metrics, labels, the object), lives in
:mod:`foresight.contract.trained_model`; this module adds what only the operator's objects carry.
Pure: no client calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from foresight.api.modelversion import ModelVersionSpec
from foresight.contract.trained_model import model_version_object

from ..reconcile.names import MANAGED_BY, MANAGED_BY_LABEL

__all__ = ["model_version_manifest"]


def model_version_manifest(
    name: str,
    namespace: str,
    spec: ModelVersionSpec,
    *,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
) -> dict[str, Any]:
    """The ModelVersion object: ``spec`` (already validated by pydantic) plus managed-by and model labels."""
    return model_version_object(
        name, namespace, spec, labels={MANAGED_BY_LABEL: MANAGED_BY, **labels}, annotations=annotations
    )
