"""The ``auto`` model: backtest the candidates, give each series a blend of the two that did best.

How the choice is made, and why it is judged on folds it was not made on, is
:mod:`foresight.forecast.selection`: the panel's best two blended, a series leaving the blend only
for a candidate that beats it clearly on every fold. :attr:`AutoModel.auto_result` is the choice
applied to every backtest fold (what the bands are calibrated on); :attr:`AutoModel.honest_result`
makes the choice for each fold from the folds before it, and its error is what
:meth:`AutoModel.backtest_errors` reports for ``auto``: the expected error on the next window, not
the luck of the folds that chose. A candidate that fails or diverges (a non-finite or exploding
loss; e.g. too little history for a network) is dropped with a warning and never chosen.

Progress: ``on_event(kind, data)`` hears ``candidate`` (a backtest starts), ``fold`` (a model is
fitted for one backtest origin), ``candidate_done`` (with its errors), ``refit`` (fitting the
chosen models on the full history); epochs of neural models go to ``progress`` as usual, from the
backtest too. ``save`` / ``load`` keep the choices and the trained networks (``config.json`` plus
``models/<name>/``); the closed-form and statsforecast models carry no fitted state (they are
rebuilt from their parameters and fitted on the panel given to ``predict``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from foresight.timeseries import Forecast, Panel

from .backtest import BacktestResult, backtest
from .models.base import Model, ProgressCallback, get_model, model_class
from .selection import MARGIN, Choice, choose, combine, nested_predictions

__all__ = ["DEFAULT_CANDIDATES", "AutoEvent", "AutoModel", "Choice"]

log = logging.getLogger(__name__)

DEFAULT_CANDIDATES: tuple[str, ...] = ("naive", "seasonal_naive", "linear", "ets", "theta", "lstm")
SAVE_FORMAT = 1

AutoEvent = Callable[[str, dict[str, Any]], None]
"""``(kind, data)``: see the module docstring for the kinds."""


def _key(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


class AutoModel(Model):
    """Per-series model selection (and top-2 ensembles) by rolling-origin backtest."""

    name = "auto"
    cheap_refit: ClassVar[bool] = False
    uses_covariates: ClassVar[bool] = True
    saveable: ClassVar[bool] = True

    def __init__(
        self,
        *,
        candidates: Sequence[str] = DEFAULT_CANDIDATES,
        model_params: Mapping[str, Mapping[str, Any]] | None = None,
        folds: int = 3,
        ensemble: bool = True,
        season: int | None = None,
        margin: float = MARGIN,
    ) -> None:
        """
        Args:
            candidates: model names to compare (not ``auto``).
            model_params: constructor parameters per candidate name.
            folds: backtest origins.
            ensemble: blend the best two candidates per series (else the best alone).
            season: MASE season in steps; ``None`` = one day.
            margin: a series leaves the blend for a challenger whose error is below this share of
                the blend's on every fold (:mod:`.selection`).
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
        self.saved_backtest: dict[str, dict[str, float | None]] = {}
        """Backtest summaries read back by :meth:`load` (the per-fold results are not saved)."""
        self.choices: list[Choice] = []
        self.auto_result: BacktestResult | None = None
        self.honest_result: BacktestResult | None = None
        self.margin = margin
        self._by_key: dict[tuple[tuple[str, str], ...], Choice] = {}
        self.horizon: int | None = None
        self._default: Choice | None = None
        self._fitted: dict[str, Model] = {}
        self.on_event: AutoEvent | None = None

    def _emit(self, kind: str, **data: Any) -> None:
        if self.on_event is not None:
            self.on_event(kind, data)

    def params(self) -> dict[str, Any]:
        return {"candidates": self.candidates, "model_params": self.model_params, "folds": self.folds,
                "ensemble": self.ensemble, "season": self.season, "margin": self.margin}  # fmt: skip

    def _new(self, name: str) -> Model:
        return get_model(name, **self.model_params.get(name, {}))

    def fit(
        self, panel: Panel, horizon: int, *, seed: int = 0, progress: ProgressCallback | None = None
    ) -> None:
        self._backtest_candidates(panel, horizon, seed, progress)
        choices, default = self._choose(panel, horizon)
        # Refit on the full history only the models some series (or the default) needs.
        needed = sorted({m for c in [*choices, default] for m in c.models})
        self._fitted = {}
        for name in needed:
            self._emit("refit", model=name)
            model = self._new(name)
            model.fit(panel, horizon, seed=seed, progress=progress if model.neural else None)
            self._fitted[name] = model
        self.horizon = horizon
        log.info(
            "auto: choices %s", {c: sum(x.label == c for x in choices) for c in {x.label for x in choices}}
        )

    def _backtest_candidates(
        self, panel: Panel, horizon: int, seed: int, progress: ProgressCallback | None
    ) -> None:
        """Backtest every candidate into ``results``; one that fails is skipped (``failures``)."""
        self.results, self.failures = {}, {}
        for index, name in enumerate(self.candidates, start=1):
            self._emit("candidate", model=name, index=index, of=len(self.candidates), folds=self.folds)
            t0 = time.perf_counter()
            try:
                self.results[name] = backtest(
                    panel,
                    self._fold_factory(name, progress),
                    horizon,
                    self.folds,
                    season=self.season,
                    seed=seed,
                )
            except Exception as exc:  # a failing candidate must not sink the task; it is reported
                log.warning("auto: candidate %s failed its backtest and is skipped: %s", name, exc)
                self.failures[name] = f"{type(exc).__name__}: {exc}"
                self._emit("candidate_failed", model=name, error=self.failures[name])
                continue
            summary = self.results[name].summary()
            self._emit(
                "candidate_done", model=name, mase=summary["mase"], mae=summary["mae"],
                seconds=time.perf_counter() - t0,
            )  # fmt: skip
        if not self.results:
            raise RuntimeError(f"auto: every candidate failed its backtest: {self.failures}")

    def _choose(self, panel: Panel, horizon: int) -> tuple[list[Choice], Choice]:
        """Each series' blend and the default for series not seen in the fit (:mod:`.selection`);
        sets ``auto_result`` (the choice on every fold) and ``honest_result`` (nested)."""
        names = list(self.results)
        first = self.results[names[0]]
        points = {n: self.results[n].point for n in names}
        choices, default = choose(
            first.actual, points, first.scale, margin=self.margin, ensemble=self.ensemble
        )
        stacked = {
            part: combine(choices, names, np.stack([getattr(self.results[n], part) for n in names]))
            for part in ("point", "lower", "upper")
        }
        labels = [c.label for c in choices]
        self.auto_result = BacktestResult(
            model="auto", horizon=horizon, origins=first.origins, actual=first.actual,
            point=stacked["point"], lower=stacked["lower"], upper=stacked["upper"], scale=first.scale,
            series_model=labels,
        )  # fmt: skip
        honest = nested_predictions(
            first.actual, points, first.scale, margin=self.margin, ensemble=self.ensemble
        )
        self.honest_result = BacktestResult(
            model="auto", horizon=horizon, origins=first.origins, actual=first.actual, point=honest,
            lower=honest, upper=honest, scale=first.scale, series_model=labels,
        )  # fmt: skip
        self.choices = choices
        self._default = default
        self._by_key = {_key(k): c for k, c in zip(panel.keys, choices, strict=True)}
        return choices, default

    def _fold_factory(self, name: str, progress: ProgressCallback | None) -> Callable[[], Model]:
        """A factory for ``backtest`` that reports each fold's fit and routes epochs to ``progress``."""
        fold = 0

        def make() -> Model:
            nonlocal fold
            fold += 1
            model = self._new(name)
            if model.neural:
                # backtest() fits a neural model once, on the history before the first origin.
                model.progress = progress
                self._emit("fold", model=name, fold=1, of=1)
            else:
                self._emit("fold", model=name, fold=fold, of=self.folds)
            return model

        return make

    def backtest_errors(self) -> dict[str, dict[str, float]]:
        """Model -> {mase, median_mase, mae, rmse, coverage} on the backtest, ``auto`` included."""
        out = {n: r.summary() for n, r in self.results.items()}
        if self.honest_result is not None and self.folds > 1:
            # Folds 2..F, each chosen on the folds before it: what the next window should see. Every
            # candidate is scored on the same folds, so the rows compare like for like.
            out = {n: r.from_fold(1).summary() for n, r in self.results.items()}
            out["auto"] = self.honest_result.from_fold(1).summary()
            out["auto"]["coverage"] = self.auto_result.summary()["coverage"] if self.auto_result else np.nan
        elif self.auto_result is not None:
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

    # ---- persistence ----------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write ``config.json`` (choices, parameters, backtest errors) and each trained sub-model."""
        if self._default is None:
            raise RuntimeError("auto model is not fitted: nothing to save")
        d = Path(path)
        d.mkdir(parents=True, exist_ok=True)
        fitted: dict[str, dict[str, Any]] = {}
        for name, model in self._fitted.items():
            if model.saveable:
                model.save(d / "models" / name)
            fitted[name] = {"saved": model.saveable, "params": model.params()}
        config = {
            "name": self.name,
            "format": SAVE_FORMAT,
            "params": self.params(),
            "horizon": self.horizon,
            "default": {"models": list(self._default.models), "weights": list(self._default.weights)},
            "choices": [
                {"labels": [list(kv) for kv in key], "models": list(c.models), "weights": list(c.weights)}
                for key, c in self._by_key.items()
            ],
            "fitted": fitted,
            "failures": self.failures,
            "backtest": _json_safe(self.backtest_errors()),
        }
        (d / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))

    @classmethod
    def load(cls, path: str | Path) -> AutoModel:
        """Load a directory written by :meth:`save` (neural weights only; no pickled code)."""
        d = Path(path)
        config = json.loads((d / "config.json").read_text())
        if config.get("name") != cls.name:
            raise ValueError(f"{d} holds a {config.get('name')!r} model, not 'auto'; use load_model()")
        if config.get("format") != SAVE_FORMAT:
            raise ValueError(
                f"{d} has auto format {config.get('format')!r}; this runtime reads {SAVE_FORMAT}: retrain"
            )
        model = cls(**config["params"])
        model.horizon = config.get("horizon")
        model.failures = dict(config.get("failures", {}))
        model.saved_backtest = dict(config.get("backtest", {}))
        model._default = Choice(tuple(config["default"]["models"]), tuple(config["default"]["weights"]))
        model._by_key = {
            tuple((str(k), str(v)) for k, v in c["labels"]): Choice(tuple(c["models"]), tuple(c["weights"]))
            for c in config["choices"]
        }
        model._fitted = {}
        for name, info in config["fitted"].items():
            if info["saved"]:
                model._fitted[name] = model_class(name).load(d / "models" / name)
            else:
                model._fitted[name] = get_model(name, **info["params"])
        return model


def _json_safe(errors: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float | None]]:
    # JSON has no NaN: unknown errors are stored as null.
    return {m: {k: (v if np.isfinite(v) else None) for k, v in e.items()} for m, e in errors.items()}
