"""The API resources of Foresight's own kinds, for the Kubernetes client (one reference per kind).

Every handler that reads or writes a ForecastTask, TrainingJob, ModelVersion or ClassifierService
(its own, or another kind's, as a ClassifierService reads its ModelVersion) uses these.
"""

from __future__ import annotations

from foresight.api import (
    CLASSIFIER_SERVICE,
    FORECAST_TASK,
    MODEL_LIBRARY,
    MODEL_VERSION,
    TRAINING_JOB,
    KindInfo,
)
from foresight.api.meta import API_VERSION
from foresight.kube import ResourceRef

__all__ = [
    "CLASSIFIER_SERVICES",
    "FORECAST_TASKS",
    "MODEL_LIBRARIES",
    "MODEL_VERSIONS",
    "TRAINING_JOBS",
    "kind_ref",
]


def kind_ref(info: KindInfo) -> ResourceRef:
    """The API resource of one of our kinds (``foresight.dev/v1alpha1``, its plural)."""
    return ResourceRef(API_VERSION, info.plural, info.kind)


FORECAST_TASKS = kind_ref(FORECAST_TASK)
TRAINING_JOBS = kind_ref(TRAINING_JOB)
MODEL_VERSIONS = kind_ref(MODEL_VERSION)
MODEL_LIBRARIES = kind_ref(MODEL_LIBRARY)
CLASSIFIER_SERVICES = kind_ref(CLASSIFIER_SERVICE)
