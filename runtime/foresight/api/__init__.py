"""The Foresight API: the six custom resources of ``foresight.dev/v1alpha1`` as pydantic models.

These models are the single source of truth: ``foresight crds`` generates the CRDs from them,
``foresight validate`` checks YAML against them, and the operator parses specs with them.
Torch-free on purpose (the operator image imports it).
"""

from __future__ import annotations

from .abexperiment import AB_EXPERIMENT, ABExperimentSpec, ABExperimentStatus
from .classifierservice import CLASSIFIER_SERVICE, ClassifierServiceSpec, ClassifierServiceStatus
from .forecasttask import FORECAST_TASK, ForecastTaskSpec, ForecastTaskStatus
from .meta import (
    API_VERSION,
    CATEGORY,
    GROUP,
    VERSION,
    Condition,
    ConditionStatus,
    ConditionType,
    KindInfo,
    Reason,
)
from .modellibrary import MODEL_LIBRARY, ModelLibrarySpec, ModelLibraryStatus
from .modelversion import MODEL_VERSION, ModelVersionSpec, ModelVersionStatus, Stage
from .trainingjob import TRAINING_JOB, TrainingJobSpec, TrainingJobStatus

KINDS: dict[str, KindInfo] = {
    info.kind: info
    for info in (FORECAST_TASK, TRAINING_JOB, MODEL_VERSION, MODEL_LIBRARY, AB_EXPERIMENT, CLASSIFIER_SERVICE)
}
"""Every kind, by name, in the order of the README."""

__all__ = [
    "AB_EXPERIMENT",
    "API_VERSION",
    "CATEGORY",
    "CLASSIFIER_SERVICE",
    "FORECAST_TASK",
    "GROUP",
    "KINDS",
    "MODEL_LIBRARY",
    "MODEL_VERSION",
    "TRAINING_JOB",
    "VERSION",
    "ABExperimentSpec",
    "ABExperimentStatus",
    "ClassifierServiceSpec",
    "ClassifierServiceStatus",
    "Condition",
    "ConditionStatus",
    "ConditionType",
    "ForecastTaskSpec",
    "ForecastTaskStatus",
    "KindInfo",
    "ModelLibrarySpec",
    "ModelLibraryStatus",
    "ModelVersionSpec",
    "ModelVersionStatus",
    "Reason",
    "Stage",
    "TrainingJobSpec",
    "TrainingJobStatus",
]
