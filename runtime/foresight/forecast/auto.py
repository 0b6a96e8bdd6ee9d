"""The ``auto`` model: backtest the candidates, give each series the model that did best.

Selection is per series by backtest MAE (equivalently MASE: the scale is per series). Where the
inverse-error weighted mean of a series' two best models beat both in the backtest, the series
gets that ensemble. Because the choice is made on the same backtest, ``auto``'s backtest error is
never worse than any candidate's, so never worse than the best baseline (it falls back to it);
the per-model errors and the choice per series are kept for the ForecastTask status.
A candidate that fails (e.g. too little history for a neural model) is dropped with a warning.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from foresight.timeseries import Forecast, Panel

from .backtest import BacktestResult, backtest
from .models.base import Model, ProgressCallback, get_model

__all__ = ["DEFAULT_CANDIDATES", "AutoModel", "Choice"]

log = logging.getLogger(__name__)

DEFAULT_CANDIDATES: tuple[str, ...] = ("seasonal_naive", "linear", "ets", "theta", "lstm")


@dataclass(frozen=True)
class Choice:
    """What one series gets: one model (weight 1.0) or two with weights."""

    models: tuple[str, ...]
    weights: tuple[float, ...]

    @property
    def label(self) -> str:
        return self.models[0] if len(self.models) == 1 else "ensemble:" + "+".join(self.models)


def _key(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


class AutoModel(Model):
    """Per-series model selection (and top-2 ensembles) by rolling-origin backtest."""

    name = "auto"
    cheap_refit: ClassVar[bool] = False
    uses_covariates: ClassVar[bool] = True

    def __init__(
        self,
        *,
        candidates: Sequence[str] = DEFAULT_CANDIDATES,
        model_params: Mapping[str, Mapping[str, Any]] | None = None,
        folds: int = 3,
        ensemble: bool = True,
        season: int | None = None,
    ) -> None:
        """
        Args:
            candidates: registry names to compare (not ``auto``).
            model_params: constructor parameters per candidate name.
            folds: backtest origins.
            ensemble: also consider the weighted top-2 ensemble per series.
            season: MASE season in steps; ``None`` = one day.
        """
        if not candidates or "auto" in candidates:
            raise ValueError(
                f"candidates must be non-empty and must not include 'auto', got {list(candidates)}"
            )
        self.candidates = list(candidates)
        self.model_params = {k: dict(v) for k, v in (model_params or {}).items()}
        self.folds = folds
        self.ensemble = ensemble
        self.season = season
        self.results: dict[str, BacktestResult] = {}
        self.failures: dict[str, str] = {}
        self.choices: list[Choice] = []
        self.auto_result: BacktestResult | None = None
        self._by_key: dict[tuple[tuple[str, str], ...], Choice] = {}
        self._default: Choice | None = None
        self._fitted: dict[str, Model] = {}

    def params(self) -> dict[str, Any]:
        return {"candidates": self.candidates, "model_params": self.model_params, "folds": self.folds,
                "ensemble": self.ensemble, "season": self.season}  # fmt: skip

    def _new(self, name: str) -> Model:
        return get_model(name, **self.model_params.get(name, {}))

    def fit(
        self, panel: Panel, horizon: int, *, seed: int = 0, progress: ProgressCallback | None = None
    ) -> None:
        self.results, self.failures = {}, {}
        for name in self.candidates:
            try:
                self.results[name] = backtest(
                    panel,
                    functools.partial(self._new, name),
                    horizon,
                    self.folds,
                    season=self.season,
                    seed=seed,
                )
            except Exception as exc:  # a failing candidate must not sink the task; it is reported
                log.warning("auto: candidate %s failed its backtest and is skipped: %s", name, exc)
                self.failures[name] = f"{type(exc).__name__}: {exc}"
        if not self.results:
            raise RuntimeError(f"auto: every candidate failed its backtest: {self.failures}")
        names = list(self.results)
        # MAE per (model, series); a missing / non-finite error can never be chosen.
        mae = np.stack([self.results[n].mae for n in names])
        mae = np.where(np.isfinite(mae), mae, np.inf)
        first = self.results[names[0]]
        point = np.stack([self.results[n].point for n in names])
        lower = np.stack([self.results[n].lower for n in names])
        upper = np.stack([self.results[n].upper for n in names])
        order = np.argsort(mae, axis=0, kind="stable")
        n_series = panel.n_series
        choices: list[Choice] = []
        ap, al, au = (np.empty_like(first.point) for _ in range(3))
        for i in range(n_series):
            a = int(order[0, i])
            choice, p, lo, hi = Choice((names[a],), (1.0,)), point[a, i], lower[a, i], upper[a, i]
            if self.ensemble and len(names) > 1 and np.isfinite(mae[order[1, i], i]):
                b = int(order[1, i])
                inv = 1.0 / np.maximum([mae[a, i], mae[b, i]], 1e-12)
                w = inv / inv.sum()
                ep = w[0] * point[a, i] + w[1] * point[b, i]
                diff = np.abs(first.actual[i] - ep)
                ens_mae = float(np.nanmean(diff)) if np.isfinite(diff).any() else np.inf
                if ens_mae < mae[a, i]:
                    choice = Choice((names[a], names[b]), (float(w[0]), float(w[1])))
                    p = ep
                    lo = w[0] * lower[a, i] + w[1] * lower[b, i]
                    hi = w[0] * upper[a, i] + w[1] * upper[b, i]
            choices.append(choice)
            ap[i], al[i], au[i] = p, lo, hi
        self.choices = choices
        self.auto_result = BacktestResult(
            model="auto", horizon=horizon, origins=first.origins, actual=first.actual, point=ap, lower=al,
            upper=au, scale=first.scale, series_model=[c.label for c in choices],
        )  # fmt: skip
        mean_mase = {n: self.results[n].summary()["mase"] for n in names}
        best_overall = min(names, key=lambda n: (not np.isfinite(mean_mase[n]), mean_mase[n]))
        self._default = Choice((best_overall,), (1.0,))
        self._by_key = {_key(k): c for k, c in zip(panel.keys, choices, strict=True)}
        # Refit on the full history only the models some series (or the default) needs.
        needed = sorted({m for c in [*choices, self._default] for m in c.models})
        self._fitted = {}
        for name in needed:
            model = self._new(name)
            model.fit(panel, horizon, seed=seed, progress=progress if model.neural else None)
            self._fitted[name] = model
        log.info(
            "auto: choices %s", {c: sum(x.label == c for x in choices) for c in {x.label for x in choices}}
        )

    def backtest_errors(self) -> dict[str, dict[str, float]]:
        """Model -> {mase, median_mase, mae, rmse, coverage} on the backtest, ``auto`` included."""
        out = {n: r.summary() for n, r in self.results.items()}
        if self.auto_result is not None:
            out["auto"] = self.auto_result.summary()
        return out

    def series_choices(self) -> list[dict[str, Any]]:
        """Per series: its labels and the model (or ensemble) it got."""
        return [
            {"labels": dict(k), "model": c.label, "weights": list(c.weights)} for k, c in self._by_key.items()
        ]

    def predict(self, panel: Panel, horizon: int) -> Forecast:
        if self._default is None:
            raise RuntimeError("auto model is not fitted: call fit() first")
        choices = [self._by_key.get(_key(k), self._default) for k in panel.keys]
        shape = (panel.n_series, horizon)
        point, lower, upper = np.zeros(shape), np.zeros(shape), np.zeros(shape)
        for name, model in self._fitted.items():
            rows = [i for i, c in enumerate(choices) if name in c.models]
            if not rows:
                continue
            fc = model.predict(panel.select(rows), horizon)
            for j, i in enumerate(rows):
                w = choices[i].weights[choices[i].models.index(name)]
                point[i] += w * fc.point[j]
                lower[i] += w * fc.lower[j]
                upper[i] += w * fc.upper[j]
        return Forecast(
            origin=panel.end, step=panel.step, keys=panel.keys, point=point, lower=np.minimum(lower, point),
            upper=np.maximum(upper, point), model=[c.label for c in choices],
        )  # fmt: skip
