"""Rolling-origin backtests: how a model would have done at the last few forecast origins.

Origins are spaced by ``horizon`` at the end of the history, so the test windows tile the most
recent ``folds * horizon`` steps without overlap. Cheap models are refitted at every origin (as
they would be in production); neural models are fitted once, on the history before the first
origin, and then predict from each later origin (their ``predict`` accepts a longer panel), which
keeps a backtest at the cost of one training run and never lets them see test data.

MASE uses one scale per series (in-sample seasonal naive MAE before the first origin), so per
series the ranking of models by MASE equals their ranking by MAE.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from foresight.timeseries import FloatArray, Panel

from . import accuracy
from .models.base import Model, steps_per_day

__all__ = ["BacktestResult", "backtest", "backtest_origins"]

log = logging.getLogger(__name__)


@dataclass
class BacktestResult:
    """Per-fold forecasts and per-series / aggregated errors of one model."""

    model: str
    horizon: int
    origins: list[int]
    """Column index of each fold's last observed step."""
    actual: FloatArray
    """``(n_series, folds, horizon)``."""
    point: FloatArray
    lower: FloatArray
    upper: FloatArray
    scale: FloatArray
    """MASE denominator per series."""
    series_model: list[str] = field(default_factory=list)
    """The model each series' forecasts came from (``auto`` may differ per series)."""

    def _flat(self, a: FloatArray) -> FloatArray:
        return a.reshape(a.shape[0], -1)

    @property
    def mae(self) -> FloatArray:
        return accuracy.mae(self._flat(self.actual), self._flat(self.point))

    @property
    def rmse(self) -> FloatArray:
        return accuracy.rmse(self._flat(self.actual), self._flat(self.point))

    @property
    def mase(self) -> FloatArray:
        return accuracy.mase(self._flat(self.actual), self._flat(self.point), self.scale)

    @property
    def coverage(self) -> FloatArray:
        return accuracy.coverage(self._flat(self.actual), self._flat(self.lower), self._flat(self.upper))

    def from_fold(self, first: int) -> BacktestResult:
        """The same result restricted to folds ``first..`` (0-based), to compare on common folds."""
        return dataclasses.replace(
            self, origins=self.origins[first:], actual=self.actual[:, first:], point=self.point[:, first:],
            lower=self.lower[:, first:], upper=self.upper[:, first:],
        )  # fmt: skip

    def summary(self) -> dict[str, float]:
        """Aggregates over series: mean MAE / RMSE / MASE / coverage and median MASE (NaN skipped)."""

        def agg(x: FloatArray, fn: Callable[[FloatArray], float]) -> float:
            finite = x[np.isfinite(x)]
            return float(fn(finite)) if finite.size else float("nan")

        return {
            "mae": agg(self.mae, np.mean),
            "rmse": agg(self.rmse, np.mean),
            "mase": agg(self.mase, np.mean),
            "median_mase": agg(self.mase, np.median),
            "coverage": agg(self.coverage, np.mean),
        }


def backtest_origins(n_steps: int, horizon: int, folds: int) -> list[int]:
    """Origin columns ``n - 1 - k * horizon`` for ``k = folds .. 1`` (oldest first)."""
    origins = [n_steps - 1 - k * horizon for k in range(folds, 0, -1)]
    if origins[0] < 1:
        raise ValueError(
            f"history of {n_steps} steps is too short for {folds} folds of horizon {horizon}: "
            f"need more than {folds * horizon + 1} steps; reduce folds or horizon"
        )
    return origins


def backtest(
    panel: Panel,
    model_factory: Callable[[], Model],
    horizon: int,
    folds: int = 3,
    *,
    season: int | None = None,
    seed: int = 0,
) -> BacktestResult:
    """Backtest the models made by ``model_factory`` over ``folds`` rolling origins.

    Args:
        panel: the full history.
        model_factory: builds a fresh, unfitted model.
        horizon: steps per fold.
        folds: number of origins.
        season: MASE season in steps; ``None`` = one day.
        seed: passed to ``fit``.
    """
    origins = backtest_origins(panel.n_steps, horizon, folds)
    m = season or steps_per_day(panel.step)
    shape = (panel.n_series, folds, horizon)
    actual = np.stack([panel.values[:, o + 1 : o + 1 + horizon] for o in origins], axis=1)
    point, lower, upper = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    model = model_factory()
    series_model = [model.name] * panel.n_series
    fitted = False
    for k, o in enumerate(origins):
        history = panel.head(o + 1)
        if model.cheap_refit or not fitted:
            if fitted:
                model = model_factory()
            model.fit(history, horizon, seed=seed)
            fitted = True
        fc = model.predict(history, horizon)
        point[:, k], lower[:, k], upper[:, k] = fc.point, fc.lower, fc.upper
        series_model = list(fc.model)
    scale = accuracy.seasonal_naive_scale(panel.values[:, : origins[0] + 1], m)
    return BacktestResult(
        model=model.name,
        horizon=horizon,
        origins=origins,
        actual=actual,
        point=point,
        lower=lower,
        upper=upper,
        scale=scale,
        series_model=series_model,
    )
