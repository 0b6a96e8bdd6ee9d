"""Forecasting models, one per module, behind the :class:`~foresight.forecast.models.base.Model` API."""

from .base import MODEL_NAMES, EpochReport, Model, ProgressCallback, get_model, load_model

__all__ = ["MODEL_NAMES", "EpochReport", "Model", "ProgressCallback", "get_model", "load_model"]
