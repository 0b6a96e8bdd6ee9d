"""Forecasting models, one per module, behind the :class:`~foresight.forecast.models.base.Model` API."""

from .base import (
    MODEL_NAMES,
    EpochReport,
    Model,
    ProgressCallback,
    get_model,
    is_neural,
    load_model,
    model_class,
    neural_model_names,
)

__all__ = [
    "MODEL_NAMES",
    "EpochReport",
    "Model",
    "ProgressCallback",
    "get_model",
    "is_neural",
    "load_model",
    "model_class",
    "neural_model_names",
]
