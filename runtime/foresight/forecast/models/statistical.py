"""Statistical baselines from statsforecast: AutoETS and AutoTheta, one local model per series.

These are the bar the learned models must clear (FACTS.md: on real infrastructure series ETS /
Theta roughly halve predict_linear's error and beat seasonal naive). Intervals are
statsforecast's own (``level=[80]`` by default). Both models are local and refitted from the
panel given to ``predict`` (fitting ETS *is* the forecast), so ``fit`` only validates settings;
a panel longer than the one passed to ``fit`` is therefore handled naturally.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from foresight.timeseries import FloatArray, Forecast, Panel

from .base import Model, ProgressCallback, steps_per_day

__all__ = ["ETSModel", "ThetaModel", "fill_gaps"]

log = logging.getLogger(__name__)

BATCH_SERIES = 1000
"""Series per statsforecast call (its long frame holds a row per point)."""


def fill_gaps(values: FloatArray) -> FloatArray:
    """Linear interpolation inside gaps, nearest value at the edges (statsforecast rejects NaN)."""
    out = np.array(values, dtype=np.float64, copy=True)
    x = np.arange(out.shape[1])
    for row in out:
        ok = np.isfinite(row)
        if ok.any() and not ok.all():
            row[~ok] = np.interp(x[~ok], x[ok], row[ok])
    return out


class _StatsForecastModel(Model):
    """Run one statsforecast model over every series of a panel."""

    cheap_refit: ClassVar[bool] = True
    column: ClassVar[str]

    def __init__(self, *, season_length: int | None = None, level: float = 0.8, n_jobs: int = 1) -> None:
        """
        Args:
            season_length: season in steps; ``None`` = one day at the panel's step.
            level: nominal coverage of the interval (statsforecast ``level``, as a fraction).
            n_jobs: processes statsforecast uses.
        """
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level}")
        self.season_length = season_length
        self.level = level
        self.n_jobs = n_jobs

    def params(self) -> dict[str, Any]:
        return {"season_length": self.season_length, "level": self.level, "n_jobs": self.n_jobs}

    def _make(self, season_length: int) -> Any:
        raise NotImplementedError

    def fit(
        self, panel: Panel, horizon: int, *, seed: int = 0, progress: ProgressCallback | None = None
    ) -> None:
        if horizon < 1:
            raise ValueError(f"horizon must be at least 1 step, got {horizon}")

    def predict(self, panel: Panel, horizon: int) -> Forecast:
        season = self.season_length or steps_per_day(panel.step)
        observed = np.isfinite(panel.values).sum(axis=1)
        usable = np.flatnonzero(observed >= 2)
        point = np.full((panel.n_series, horizon), np.nan)
        lower = point.copy()
        upper = point.copy()
        if usable.size:
            # Divide each series by its median magnitude before fitting: on byte-sized series
            # (~1e13) AutoTheta's optimiser needs ~10x longer to converge, with the same forecast.
            raw = panel.values[usable]
            unit = np.nanmedian(np.abs(raw), axis=1)
            unit = np.where(np.isfinite(unit) & (unit > 0), unit, 1.0)[:, None]
            values = fill_gaps(raw / unit)
            # A seasonal model needs two full seasons to estimate anything; otherwise go non-seasonal.
            if values.shape[1] < 2 * season + 1:
                log.info(
                    "%s: %d steps is under two seasons of %d, fitting non-seasonal",
                    self.name,
                    values.shape[1],
                    season,
                )
                season = 1
            p, lo, hi = (np.empty((values.shape[0], horizon)) for _ in range(3))
            # statsforecast works on a long frame (a row per point): a batch of series at a time keeps
            # its memory flat however many series the panel holds.
            for start in range(0, values.shape[0], BATCH_SERIES):
                part = slice(start, start + BATCH_SERIES)
                p[part], lo[part], hi[part] = self._forecast(values[part], season, horizon)
            p, lo, hi = p * unit, lo * unit, hi * unit
            point[usable], lower[usable], upper[usable] = p, np.minimum(lo, p), np.maximum(hi, p)
        return Forecast(
            origin=panel.end,
            step=panel.step,
            keys=panel.keys,
            point=point,
            lower=lower,
            upper=upper,
            model=[self.name] * panel.n_series,
            level=self.level,
        )


    def _forecast(self, values: FloatArray, season: int, horizon: int) -> tuple[FloatArray, ...]:
        """Point, lower and upper forecasts of the rows of ``values`` (no gaps), ``(n, horizon)`` each."""
        from statsforecast import StatsForecast

        n, t = values.shape
        df = pd.DataFrame({"unique_id": np.repeat(np.arange(n), t), "ds": np.tile(np.arange(t), n),
                           "y": values.reshape(-1)})  # fmt: skip
        sf = StatsForecast(models=[self._make(season)], freq=1, n_jobs=self.n_jobs)
        pct = round(self.level * 100)
        out = sf.forecast(df=df, h=horizon, level=[pct]).sort_values(["unique_id", "ds"])
        cols = (self.column, f"{self.column}-lo-{pct}", f"{self.column}-hi-{pct}")
        return tuple(out[c].to_numpy(dtype=np.float64).reshape(n, horizon) for c in cols)


class ETSModel(_StatsForecastModel):
    """statsforecast ``AutoETS(season_length=...)``: exponential smoothing, model chosen by AICc."""

    name = "ets"
    column = "AutoETS"

    def _make(self, season_length: int) -> Any:
        from statsforecast.models import AutoETS

        return AutoETS(season_length=season_length)


class ThetaModel(_StatsForecastModel):
    """statsforecast ``AutoTheta(season_length=...)``: the Theta method with seasonal decomposition."""

    name = "theta"
    column = "AutoTheta"

    def _make(self, season_length: int) -> Any:
        from statsforecast.models import AutoTheta

        return AutoTheta(season_length=season_length)
