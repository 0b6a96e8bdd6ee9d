"""Calibrated bands from backtest residuals (split conformal), and their measured coverage.

A model's own interval (statsforecast's, a network's residual quantiles) is a claim; the
backtest shows what it is worth. This module turns the backtest's errors into bands that hold
their level out of sample:

- Each backtest fold of each series gives one *residual path*: ``(actual - point) / scale`` over
  the horizon, normalised by the series' scale (the MASE denominator: in-sample seasonal naive
  error), so paths of big and small series can be pooled.
- The band at step ``h`` is ``point + scale * q``, with ``q`` the split-conformal quantiles
  (finite-sample corrected: the ``ceil((n + 1) * p) / n`` empirical quantile) of the normalised
  residuals at ``h``: per series where the series alone has at least ``min_series_paths``
  paths, pooled over all series otherwise (a backtest of a few folds gives a series only a few
  paths of its own, so pooling is the usual case).
- The coverage reported is measured out of sample, fold by fold: each fold's actuals against a
  band calibrated on the *other* folds only (cross-conformal), so it is an honest estimate of
  what the band will do next, per horizon step.

The same residual paths give the predictive distribution used for exhaustion probabilities
(:mod:`foresight.forecast.exhaustion`): sampling whole paths keeps the errors' correlation
across steps, which matters for "crosses at any step within 6 h".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from foresight.timeseries import FloatArray

__all__ = ["Calibration", "calibrate", "conformal_quantile", "normalised_paths", "safe_scale"]

MIN_SERIES_PATHS = 30
"""Paths a series needs before its band uses its own residuals instead of the pooled ones."""
SAVED_PATHS = 1000
"""Residual paths kept with a saved model (a deterministic subsample beyond this)."""


def _rounded(values: FloatArray) -> list[float]:
    return [round(float(x), 6) for x in values]


def _key(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def safe_scale(scale: FloatArray, reference: FloatArray) -> FloatArray:
    """The per-series scale, with a usable value where it is missing, zero or not finite.

    A constant history has no seasonal naive error; its residuals are normalised by 1% of its
    level (or 1 for a zero series) so that a constant series still gets a (narrow) band.
    """
    s = np.asarray(scale, dtype=np.float64).copy()
    ref = np.abs(np.asarray(reference, dtype=np.float64))
    fallback = np.where(np.isfinite(ref) & (ref > 0), 0.01 * ref, 1.0)
    bad = ~np.isfinite(s) | (s <= 0)
    s[bad] = fallback[bad]
    return s


def normalised_paths(actual: FloatArray, point: FloatArray, scale: FloatArray) -> FloatArray:
    """``(actual - point) / scale`` shaped ``(n_series, folds, horizon)`` (NaN where unknown)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.asarray(actual) - np.asarray(point)) / np.asarray(scale)[:, None, None]


def conformal_quantile(residuals: FloatArray, q: float, axis: int = 0) -> FloatArray:
    """The finite-sample split-conformal quantile ``q`` of ``residuals`` along ``axis`` (NaN skipped).

    With ``n`` residuals the upper quantile uses rank ``ceil((n + 1) q)`` (and the lower
    ``floor((n + 1) q)``), the correction that makes ``P(new residual <= quantile) >= q`` hold
    exactly under exchangeability; too few residuals for that rank give the extreme one.
    """
    r = np.moveaxis(np.asarray(residuals, dtype=np.float64), axis, -1)
    out = np.full(r.shape[:-1], np.nan)
    for idx in np.ndindex(*r.shape[:-1]):
        x = np.sort(r[idx][np.isfinite(r[idx])])
        n = x.size
        if n == 0:
            continue
        rank = min(n, math.ceil((n + 1) * q)) if q >= 0.5 else max(1, math.floor((n + 1) * q))
        out[idx] = x[rank - 1]
    return out


@dataclass(frozen=True)
class Calibration:
    """Bands and a predictive distribution, calibrated on a backtest's residual paths."""

    level: float
    """Nominal coverage of ``[lower, upper]``."""
    scale: FloatArray
    """Per-series normalising scale, shape ``(n_series,)``."""
    lower_q: FloatArray
    """Normalised lower quantile per series and step, ``(n_series, horizon)``."""
    upper_q: FloatArray
    """Normalised upper quantile per series and step, ``(n_series, horizon)``."""
    paths: FloatArray
    """Pooled normalised residual paths with no missing step, ``(n_paths, horizon)``."""
    coverage: FloatArray
    """Out-of-sample (leave-one-fold-out) coverage per step, ``(horizon,)``; NaN when unknown."""
    per_series: npt.NDArray[np.bool_]
    """Which series have bands from their own residuals (the others use the pooled ones)."""

    @property
    def horizon(self) -> int:
        return int(self.lower_q.shape[1])

    def pooled(self) -> tuple[FloatArray, FloatArray]:
        """The quantiles of series without bands of their own (the pooled ones), ``(horizon,)`` each."""
        rows = ~self.per_series
        if rows.any():
            i = int(np.flatnonzero(rows)[0])
            return self.lower_q[i], self.upper_q[i]
        return np.median(self.lower_q, axis=0), np.median(self.upper_q, axis=0)

    def to_dict(self, keys: Sequence[Mapping[str, str]]) -> dict[str, Any]:
        """What a saved model keeps (JSON): pooled quantiles, the bands of series with their own
        (by ``keys``, the series' labels), coverage, and a sample of residual paths."""
        lo, hi = self.pooled()
        paths = self.paths
        if paths.shape[0] > SAVED_PATHS:
            paths = paths[np.linspace(0, paths.shape[0] - 1, SAVED_PATHS).round().astype(np.int64)]
        own = [
            {
                "labels": dict(keys[int(i)]),
                "lower": _rounded(self.lower_q[i]),
                "upper": _rounded(self.upper_q[i]),
            }
            for i in np.flatnonzero(self.per_series)
        ]
        return {
            "level": self.level,
            "lower": _rounded(lo),
            "upper": _rounded(hi),
            "series": own,
            "coverage": [None if not np.isfinite(c) else round(float(c), 4) for c in self.coverage],
            "paths": [_rounded(row) for row in paths],
        }

    @classmethod
    def from_dict(
        cls, doc: Mapping[str, Any], keys: Sequence[Mapping[str, str]], scale: FloatArray
    ) -> Calibration:
        """A saved calibration (:meth:`to_dict`) for the series ``keys`` with ``scale`` (their own, from
        their history now): a series saved with bands of its own gets them back, the others the
        pooled ones."""
        lo = np.asarray(doc["lower"], dtype=np.float64)
        hi = np.asarray(doc["upper"], dtype=np.float64)
        n = len(keys)
        lower, upper, own = np.tile(lo, (n, 1)), np.tile(hi, (n, 1)), np.zeros(n, dtype=bool)
        saved = {_key(s["labels"]): s for s in doc.get("series", [])}
        for i, k in enumerate(keys):
            s = saved.get(_key(k))
            if s is not None:
                lower[i], upper[i], own[i] = s["lower"], s["upper"], True
        return cls(
            level=float(doc["level"]),
            scale=np.asarray(scale, dtype=np.float64),
            lower_q=lower,
            upper_q=upper,
            paths=np.asarray(doc["paths"], dtype=np.float64).reshape(-1, lo.shape[0]),
            coverage=np.asarray([np.nan if c is None else c for c in doc["coverage"]], dtype=np.float64),
            per_series=own,
        )

    def bands(self, point: FloatArray) -> tuple[FloatArray, FloatArray]:
        """``(lower, upper)`` around ``point`` (``(n_series, h)`` with ``h <= horizon``)."""
        p = np.asarray(point, dtype=np.float64)
        h = p.shape[1]
        if h > self.horizon:
            raise ValueError(
                f"calibrated for {self.horizon} steps, asked for {h}: backtest the longer horizon"
            )
        lo = p + self.scale[:, None] * self.lower_q[:, :h]
        hi = p + self.scale[:, None] * self.upper_q[:, :h]
        return np.minimum(lo, p), np.maximum(hi, p)


def _quantiles(
    resid: FloatArray, level: float, min_series_paths: int
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
    """Per-series ``(lower_q, upper_q, per_series)`` from residuals ``(n_series, folds, horizon)``."""
    n_series, _, horizon = resid.shape
    alpha = (1.0 - level) / 2.0
    pooled = resid.reshape(-1, horizon)
    lo_pool = conformal_quantile(pooled, alpha)
    hi_pool = conformal_quantile(pooled, 1.0 - alpha)
    lower = np.tile(lo_pool, (n_series, 1))
    upper = np.tile(hi_pool, (n_series, 1))
    counts = np.isfinite(resid).sum(axis=1).min(axis=1)
    own = counts >= min_series_paths
    for i in np.flatnonzero(own):
        lower[i] = conformal_quantile(resid[i], alpha)
        upper[i] = conformal_quantile(resid[i], 1.0 - alpha)
    # A step with no residual at all (never observed in the backtest) has no band.
    return np.nan_to_num(lower, nan=0.0), np.nan_to_num(upper, nan=0.0), own


def _cross_coverage(resid: FloatArray, level: float, min_series_paths: int) -> FloatArray:
    """Coverage per step of each fold against quantiles from the other folds."""
    folds = resid.shape[1]
    horizon = resid.shape[2]
    if folds < 2:
        return np.full(horizon, np.nan)
    inside = np.zeros(horizon)
    count = np.zeros(horizon)
    for k in range(folds):
        rest = np.delete(resid, k, axis=1)
        lo, hi, _ = _quantiles(rest, level, min_series_paths)
        r = resid[:, k, :]
        ok = np.isfinite(r)
        inside += np.sum(ok & (r >= lo) & (r <= hi), axis=0)
        count += ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, inside / np.maximum(count, 1), np.nan)


def calibrate(
    actual: FloatArray,
    point: FloatArray,
    scale: FloatArray,
    level: float,
    *,
    reference: FloatArray | None = None,
    min_series_paths: int = MIN_SERIES_PATHS,
) -> Calibration:
    """Calibrate bands at ``level`` from a backtest's ``actual`` and ``point`` ``(n_series, folds, h)``.

    Args:
        scale: per-series scale (the backtest's MASE denominator).
        reference: per-series typical level, for a usable scale where ``scale`` is 0 or missing.
        min_series_paths: own paths a series needs for its own band.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    a = np.asarray(actual, dtype=np.float64)
    p = np.asarray(point, dtype=np.float64)
    if a.shape != p.shape or a.ndim != 3:
        raise ValueError(
            f"actual and point must both be (n_series, folds, horizon), got {a.shape}, {p.shape}"
        )
    ref = reference if reference is not None else np.nanmean(np.abs(a), axis=(1, 2))
    s = safe_scale(scale, ref)
    resid = normalised_paths(a, p, s)
    lower_q, upper_q, own = _quantiles(resid, level, min_series_paths)
    flat = resid.reshape(-1, resid.shape[2])
    paths = flat[np.isfinite(flat).all(axis=1)]
    return Calibration(
        level=level,
        scale=s,
        lower_q=lower_q,
        upper_q=upper_q,
        paths=paths,
        coverage=_cross_coverage(resid, level, min_series_paths),
        per_series=own,
    )
