"""The API every forecasting model implements, the models by name, and shared interval helpers.

A model is fitted on a :class:`Panel` and predicts ``horizon`` steps after the end of a panel,
which may be longer than the one it was fitted on (a model trained yesterday predicts from
today's history). Capability flags let the backtest and ``auto`` decide how to treat a model
(e.g. neural models are fitted once per backtest, cheap ones refitted per fold).
"""

from __future__ import annotations

import importlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from foresight.timeseries import FloatArray, Forecast, Panel

__all__ = [
    "MODEL_NAMES",
    "EpochReport",
    "Model",
    "ProgressCallback",
    "empirical_bounds",
    "get_model",
    "is_neural",
    "load_model",
    "model_class",
    "neural_model_names",
    "steps_per_day",
]


@dataclass(frozen=True)
class EpochReport:
    """One epoch of training, as passed to a progress callback."""

    epoch: int
    """1-based epoch number."""
    train_loss: float
    val_loss: float
    """NaN when there is no validation split."""
    seconds: float
    """Wall time of the epoch."""


ProgressCallback = Callable[[EpochReport], None]


class Model(ABC):
    """A forecasting model: ``fit`` then ``predict``; neural ones also ``save`` / ``load``."""

    name: ClassVar[str]
    """The model's name in specs and saved models (``naive``, ``lstm``, ...)."""
    neural: ClassVar[bool] = False
    """Trained by gradient descent; expensive to fit, so backtests fit it once."""
    cheap_refit: ClassVar[bool] = True
    """Cheap enough to refit at every backtest origin."""
    uses_covariates: ClassVar[bool] = False
    """Reads ``panel.covariates`` as inputs."""
    global_model: ClassVar[bool] = False
    """One model for all series (as opposed to one per series)."""
    saveable: ClassVar[bool] = False
    """Implements ``save`` / ``load``."""
    progress: ProgressCallback | None = None
    """Per-epoch callback used when ``fit`` is called without one (e.g. from inside a backtest,
    which does not pass callbacks through); only trained models report epochs."""

    @abstractmethod
    def fit(
        self, panel: Panel, horizon: int, *, seed: int = 0, progress: ProgressCallback | None = None
    ) -> None:
        """Learn from ``panel`` for forecasts up to ``horizon`` steps ahead."""

    @abstractmethod
    def predict(self, panel: Panel, horizon: int) -> Forecast:
        """Forecast ``horizon`` steps after ``panel.end``."""

    def params(self) -> dict[str, Any]:
        """Constructor parameters, JSON-serialisable (recorded with saved models and in status)."""
        return {}

    def save(self, path: str | Path) -> None:
        raise NotImplementedError(f"model {self.name!r} has no saved state; rebuild it with get_model()")

    @classmethod
    def load(cls, path: str | Path) -> Model:
        raise NotImplementedError(f"model {cls.name!r} has no saved state; rebuild it with get_model()")


# Every model by name: name -> "module:Class", imported lazily so the baselines work without
# torch / statsforecast.
_MODEL_CLASSES: dict[str, str] = {
    "naive": "foresight.forecast.models.naive:NaiveModel",
    "seasonal_naive": "foresight.forecast.models.seasonal_naive:SeasonalNaiveModel",
    "linear": "foresight.forecast.models.linear:LinearModel",
    "ets": "foresight.forecast.models.statistical:ETSModel",
    "theta": "foresight.forecast.models.statistical:ThetaModel",
    "lstm": "foresight.forecast.models.lstm:LSTMModel",
    "gru": "foresight.forecast.models.gru:GRUModel",
    "transformer": "foresight.forecast.models.transformer:TransformerModel",
    "auto": "foresight.forecast.auto:AutoModel",
}
MODEL_NAMES: tuple[str, ...] = tuple(_MODEL_CLASSES)


def model_class(name: str) -> type[Model]:
    try:
        target = _MODEL_CLASSES[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}") from None
    module_name, cls_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    assert issubclass(cls, Model)
    return cls


def is_neural(name: str) -> bool:
    """Whether the model named ``name`` is a neural network (its class's :attr:`Model.neural`).

    ``False`` for a name no model has. Imports that model's module (torch for the neural ones).
    """
    return name in _MODEL_CLASSES and model_class(name).neural


def neural_model_names() -> tuple[str, ...]:
    """The names of the neural models, in :data:`MODEL_NAMES` order (imports every model's module)."""
    return tuple(name for name in MODEL_NAMES if is_neural(name))


def get_model(name: str, **params: Any) -> Model:
    """A new, unfitted model by name, e.g. ``get_model("lstm", hidden_size=32)``."""
    return model_class(name)(**params)


def load_model(path: str | Path) -> Model:
    """Load a saved model directory (its ``config.json`` names the model class)."""
    config_path = Path(path) / "config.json"
    try:
        config = json.loads(config_path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{config_path} not found: is {path} a directory written by Model.save()?"
        ) from None
    return model_class(str(config["name"])).load(path)


def steps_per_day(step: int) -> int:
    """How many grid steps make a day (at least 1), the default season of the seasonal models."""
    return max(1, round(86400 / step))


def empirical_bounds(
    residuals: FloatArray, level: float = 0.8, min_count: int = 5
) -> tuple[FloatArray, FloatArray]:
    """Lower / upper offsets from in-sample ``residuals`` shaped ``(n_series, horizon, n_origins)``.

    The offsets are the ``(1-level)/2`` and ``(1+level)/2`` quantiles of actual minus forecast, per
    series and horizon step. Where a series has fewer than ``min_count`` residuals for a step (too
    short a history to estimate anything), the interval has zero width there.
    """
    lo_q, hi_q = (1 - level) / 2, (1 + level) / 2
    n_series, horizon, _ = residuals.shape
    lower = np.zeros((n_series, horizon))
    upper = np.zeros((n_series, horizon))
    counts = np.isfinite(residuals).sum(axis=2)
    ok = counts >= min_count
    if ok.any():
        with np.errstate(all="ignore"):
            q = np.nanquantile(np.where(ok[:, :, None], residuals, 0.0), [lo_q, hi_q], axis=2)
        lower = np.where(ok, q[0], 0.0)
        upper = np.where(ok, q[1], 0.0)
    # Quantiles of residuals can exclude zero (a biased forecaster); the bounds must still bracket
    # the point forecast, so clip to zero on each side.
    return np.minimum(lower, 0.0), np.maximum(upper, 0.0)
