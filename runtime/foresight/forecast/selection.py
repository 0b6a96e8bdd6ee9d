"""How ``auto`` picks: the panel's best two blended, unless a series clearly needs another model.

Choosing the model with the lowest backtest error for each series, on three folds, overfits the
choice: on data nobody tuned to, a rare pick of a network on a bursty series costs more than the
wins gain, and the backtest that made the choice then reports the winner's luck as its skill.
Three habits keep ``auto`` at or below its best baseline:

- **A robust default from the whole panel.** The candidates are ranked by their mean MASE over
  every series and fold; the default is the inverse-MASE weighted blend of the best two (the second
  only when it is competitive: :data:`MIN_BLEND_WEIGHT`). Forecast combination keeps the gain of a
  good model and bounds the loss of a bad pick.
- **A series leaves the default only on consistent evidence.** A candidate replaces the default for
  one series when it beats the default on *every* fold of that series by :data:`MARGIN` (its error at
  most half the default's) over at least :data:`MIN_FOLDS_TO_SWITCH` folds: a ramping quota that only
  a trend model follows gets it, a series where a network got lucky once does not.
- **The choice is judged on folds it was not made on.** :func:`nested_predictions` makes the choice
  from the folds before each fold and scores it on that fold; the resulting error is what status
  reports for ``auto`` (its expected error on the next window), not the error of the folds that
  chose it. A candidate whose backtest is not finite (it failed or diverged) is never picked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from foresight.timeseries import FloatArray

__all__ = ["MARGIN", "Choice", "choose", "combine", "fold_mase", "nested_predictions"]

MARGIN = 0.5
"""A challenger replaces a series' default only with an error below this share of the default's, on
every fold."""
MIN_FOLDS_TO_SWITCH = 2
"""Folds a series needs before a challenger can replace its default (one fold is an anecdote)."""
MIN_BLEND_WEIGHT = 0.1
"""A second candidate joins the blend only with at least this weight (its score at most nine times
the best's): a far worse model adds noise, not diversification."""


@dataclass(frozen=True)
class Choice:
    """What one series gets: one model (weight 1.0) or two with weights summing to 1."""

    models: tuple[str, ...]
    weights: tuple[float, ...]

    @property
    def label(self) -> str:
        return self.models[0] if len(self.models) == 1 else "ensemble:" + "+".join(self.models)


def fold_mase(actual: FloatArray, point: FloatArray, scale: FloatArray) -> FloatArray:
    """MASE per series and fold, ``(n_series, folds)``, from ``(n_series, folds, horizon)`` arrays."""
    with np.errstate(invalid="ignore", divide="ignore"):
        err = np.abs(np.asarray(actual) - np.asarray(point))
        counts = np.isfinite(err).sum(axis=2)
        mean = np.where(counts > 0, np.nansum(err, axis=2) / np.maximum(counts, 1), np.nan)
        return mean / np.asarray(scale)[:, None]


def _pooled(mase: FloatArray) -> float:
    finite = np.isfinite(mase)
    return float(np.mean(mase[finite])) if finite.any() else np.inf


def choose(
    actual: FloatArray,
    points: Mapping[str, FloatArray],
    scale: FloatArray,
    *,
    margin: float = MARGIN,
    ensemble: bool = True,
) -> tuple[list[Choice], Choice]:
    """Each series' choice and the default (the choice for series the backtest never saw).

    Args:
        actual: ``(n_series, folds, horizon)`` of the backtest.
        points: per candidate, its backtest forecasts shaped like ``actual``.
        scale: per-series MASE scale.
        margin: see :data:`MARGIN`.
        ensemble: blend the best two (else the best one alone).
    """
    if not points:
        raise ValueError("no candidate to choose from")
    names = list(points)
    mase = {n: fold_mase(actual, points[n], scale) for n in names}
    scores = np.array([_pooled(mase[n]) for n in names])
    if not np.isfinite(scores).any():
        # No series has a MASE scale (every history is constant, e.g. a counter's rate that never
        # moved): rank by the absolute error, finite whenever a candidate forecast anything.
        unscaled = np.ones(np.shape(actual)[0])
        scores = np.array([_pooled(fold_mase(actual, points[n], unscaled)) for n in names])
    default = _blend(names, scores, ensemble)
    n_series = np.shape(actual)[0]
    stack = np.stack([points[n] for n in names])
    base = fold_mase(actual, combine([default] * n_series, names, stack), scale)
    choices = [_challenger(i, names, mase, base[i], margin) or default for i in range(n_series)]
    return choices, default


def _challenger(
    i: int, names: Sequence[str], mase: Mapping[str, FloatArray], base: FloatArray, margin: float
) -> Choice | None:
    """The candidate that beats series ``i``'s default on every fold by ``margin`` (the biggest gain)."""
    best, gain = None, 0.0
    for name in names:
        own = mase[name][i]
        ok = np.isfinite(own) & np.isfinite(base)
        if ok.sum() < MIN_FOLDS_TO_SWITCH or not np.all(own[ok] < margin * base[ok]):
            continue
        g = float(np.mean(1.0 - own[ok] / np.maximum(base[ok], 1e-12)))
        if g > gain:
            best, gain = name, g
    return Choice((best,), (1.0,)) if best is not None else None


def _blend(names: Sequence[str], scores: FloatArray, ensemble: bool) -> Choice:
    order = np.argsort(scores, kind="stable")
    a = int(order[0])
    if not np.isfinite(scores[a]):
        raise ValueError(f"every candidate failed: no finite backtest error among {list(names)}")
    if not ensemble or len(names) < 2 or not np.isfinite(scores[int(order[1])]):
        return Choice((names[a],), (1.0,))
    b = int(order[1])
    inv = 1.0 / np.maximum([scores[a], scores[b]], 1e-12)
    w = inv / inv.sum()
    if w[1] < MIN_BLEND_WEIGHT:
        return Choice((names[a],), (1.0,))
    return Choice((names[a], names[b]), (float(w[0]), float(w[1])))


def combine(choices: Sequence[Choice], names: Sequence[str], values: FloatArray) -> FloatArray:
    """Per series, the choices' weighted mean of ``values`` (``(models, n_series, ...)``)."""
    out = np.zeros(values.shape[1:])
    index = {n: k for k, n in enumerate(names)}
    for i, c in enumerate(choices):
        for m, w in zip(c.models, c.weights, strict=True):
            out[i] = out[i] + w * values[index[m], i]
    return out


def nested_predictions(
    actual: FloatArray,
    points: Mapping[str, FloatArray],
    scale: FloatArray,
    *,
    margin: float = MARGIN,
    ensemble: bool = True,
) -> FloatArray:
    """``auto``'s out-of-sample forecasts of folds 2..F: for each, the choice made on the folds before it.

    Args:
        actual: ``(n_series, folds, horizon)``.
        points: per candidate, its backtest forecasts shaped like ``actual``.
        scale: per-series MASE scale.

    Returns:
        ``(n_series, folds, horizon)`` with fold 1 NaN (no earlier fold to choose on).
    """
    names = list(points)
    stack = np.stack([points[n] for n in names])  # (models, series, folds, horizon)
    a = np.asarray(actual, dtype=np.float64)
    out = np.full(a.shape, np.nan)
    folds = int(a.shape[1])
    for k in range(1, folds):
        try:
            choices, _ = choose(
                a[:, :k], {n: points[n][:, :k] for n in names}, scale, margin=margin, ensemble=ensemble
            )
        except ValueError:
            continue
        out[:, k] = combine(choices, names, stack[:, :, k])
    return out
