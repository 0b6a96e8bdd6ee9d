"""Exhaustion probability: the chance that a series reaches its threshold within a horizon.

"Will this quota be full within 6 h?" is a question about the whole path, not one step: a
series crosses if *any* step up to the horizon reaches the threshold. The predictive
distribution is the calibrated one of :mod:`foresight.forecast.calibration`: the point forecast
plus the series' scale times a normalised residual path drawn from the backtest. Drawing whole
paths keeps the errors' correlation across steps (an error that makes step 3 too low usually
makes step 4 too low as well), which a per-step distribution would lose.

A series already at or over its threshold has probability 1; one without a usable threshold
(no capacity, capacity zero or negative) has none (NaN), so no gauge claims it is safe.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from foresight.timeseries import FloatArray

__all__ = ["MAX_PATHS", "exhaustion_probability"]

MAX_PATHS = 2000
"""Residual paths used per series (a deterministic subsample beyond this keeps memory bounded)."""
_CHUNK_CELLS = 4_000_000
"""Series x paths x steps evaluated at once (about 16 MB of float32)."""


def _subsample(paths: FloatArray, limit: int) -> FloatArray:
    if paths.shape[0] <= limit:
        return paths
    idx = np.linspace(0, paths.shape[0] - 1, limit).round().astype(np.int64)
    return paths[idx]


def exhaustion_probability(
    point: FloatArray,
    last: FloatArray,
    threshold: FloatArray,
    scale: FloatArray,
    paths: FloatArray,
    within: Sequence[int],
) -> FloatArray:
    """P(the series reaches ``threshold`` at some step ``<= w``) for each ``w`` in ``within``.

    Args:
        point: point forecasts ``(n_series, horizon)``.
        last: the last observed value per series (at or over the threshold: probability 1).
        threshold: per series; NaN, zero or negative gives NaN (no usable threshold).
        scale: per-series scale of the normalised residual paths.
        paths: normalised residual paths ``(n_paths, >= max(within))``.
        within: step counts (e.g. 6 for "within 6 h" at an hourly step), each ``<= horizon``.

    Returns:
        ``(n_series, len(within))`` probabilities.
    """
    p = np.asarray(point, dtype=np.float64)
    n, horizon = p.shape
    steps = [int(w) for w in within]
    if any(w < 1 or w > horizon for w in steps):
        raise ValueError(f"within must be 1..{horizon} steps, got {steps}")
    thr = np.asarray(threshold, dtype=np.float64).reshape(n)
    s = np.asarray(scale, dtype=np.float64).reshape(n)
    lastv = np.asarray(last, dtype=np.float64).reshape(n)
    out = np.full((n, len(steps)), np.nan)
    usable = np.isfinite(thr) & (thr > 0)
    if not usable.any():
        return out
    wmax = max(steps)
    sample = _subsample(np.asarray(paths, dtype=np.float64), MAX_PATHS)
    if sample.shape[0] == 0:
        # No residual path at all: the forecast is all there is (probability 0 or 1).
        sample = np.zeros((1, wmax))
    r = sample[:, :wmax].astype(np.float32)
    chunk = max(1, _CHUNK_CELLS // (r.shape[0] * wmax))
    # A series whose highest possible path (the largest residual at every step) stays below its
    # threshold has probability 0 without simulating: most series of a large task are far from full.
    with np.errstate(invalid="ignore"):
        reach = np.maximum(s[:, None] * r.max(axis=0)[None, :], s[:, None] * r.min(axis=0)[None, :])
        envelope = p[:, :wmax] + reach
        # The simulation runs in float32: a margin keeps its rounding on the simulated side.
        reachable = usable & (envelope >= thr[:, None] - 1e-5 * np.abs(thr[:, None])).any(axis=1)
    out[usable & ~reachable] = 0.0
    idx = np.flatnonzero(reachable)
    for start in range(0, idx.size, chunk):
        rows = idx[start : start + chunk]
        sim = p[rows, None, :wmax].astype(np.float32) + s[rows, None, None].astype(np.float32) * r[None]
        # First step at which each simulated path reaches the threshold (wmax + 1: never).
        hit = sim >= thr[rows, None, None].astype(np.float32)
        first = np.where(hit.any(axis=2), hit.argmax(axis=2) + 1, wmax + 1)
        for j, w in enumerate(steps):
            out[rows, j] = np.mean(first <= w, axis=1)
    over = usable & np.isfinite(lastv) & (lastv >= thr)
    out[over] = 1.0
    return out
