"""Required sample size for a minimum detectable effect, and when it will be reached.

Two numbers per variant, both for a two-sided test at ``alpha`` with probability ``power`` of
detecting an effect of ``mde`` (absolute, in the metric's units):

- :func:`fixed_horizon_samples`: the classic normal-approximation sample size (Cohen's h for rates,
  Cohen's d for means), the number a fixed-horizon test would be planned with. It equals
  statsmodels' ``NormalIndPower().solve_power`` (the tests check it), including unequal splits
  (``ratio`` = candidate / control, e.g. 1/9 for a 10% canary).
- :func:`sequential_samples`: the samples at which the always-valid mSPRT
  (:mod:`~foresight.experiment.sequential`) has the same power **at that single look**. Looks
  before it can already have stopped the test, so this is an upper bound: the benchmark measures
  the real 80%-power point about 10% earlier.

:func:`eta_seconds` turns the gap into time at the current per-variant sample rate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from scipy import special

from .sequential import z_boundary

__all__ = ["eta_seconds", "fixed_horizon_samples", "sequential_samples", "variances_at_mde"]

_MAX_SAMPLES = 1e12  # beyond this an effect is not detectable in practice; reported as such


def variances_at_mde(
    kind: str, control_mean: float, control_variance: float, mde: float
) -> tuple[float, float]:
    """(control, candidate) per-observation variances when the candidate differs by ``mde``.

    For rates the candidate's Bernoulli variance is taken at ``p + mde`` (or ``p - mde`` if that
    leaves [0, 1]); for means both arms are assumed to share the control's variance.
    """
    if kind == "proportion":
        p0 = min(max(control_mean, 0.0), 1.0)
        p1 = p0 + mde if p0 + mde <= 1.0 else p0 - mde
        p1 = min(max(p1, 0.0), 1.0)
        return p0 * (1 - p0), p1 * (1 - p1)
    return control_variance, control_variance


def _effect_size(kind: str, control_mean: float, control_variance: float, mde: float) -> float:
    if kind == "proportion":
        p0 = min(max(control_mean, 0.0), 1.0)
        p1 = min(max(p0 + mde if p0 + mde <= 1.0 else p0 - mde, 0.0), 1.0)
        return abs(2 * math.asin(math.sqrt(p1)) - 2 * math.asin(math.sqrt(p0)))
    return abs(mde) / math.sqrt(control_variance) if control_variance > 0 else math.inf


def fixed_horizon_samples(
    kind: str,
    control_mean: float,
    control_variance: float,
    mde: float,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
) -> tuple[float, float]:
    """(control, candidate) samples a fixed-horizon two-sided test needs (not rounded)."""
    if mde <= 0 or ratio <= 0:
        raise ValueError(
            f"the minimum detectable effect and the split ratio must be positive, got {mde}, {ratio}"
        )
    es = _effect_size(kind, control_mean, control_variance, mde)
    if es == 0:
        return (math.inf, math.inf)
    z = float(special.ndtri(1 - alpha / 2) + special.ndtri(power))
    n_control = (1 + 1 / ratio) * (z / es) ** 2
    return (n_control, ratio * n_control)


def sequential_samples(
    kind: str,
    control_mean: float,
    control_variance: float,
    mde: float,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    tau: float | None = None,
) -> tuple[float, float]:
    """(control, candidate) samples at which the mSPRT with mixture ``tau`` (default ``mde``) has
    ``power`` at that look: ``mde/√V - boundary(V) >= z_power``, solved by bisection on n."""
    if mde <= 0 or ratio <= 0:
        raise ValueError(
            f"the minimum detectable effect and the split ratio must be positive, got {mde}, {ratio}"
        )
    v0, v1 = variances_at_mde(kind, control_mean, control_variance, mde)
    if v0 + v1 <= 0:
        return (math.inf, math.inf)
    tau2 = (tau or mde) ** 2
    z_power = float(special.ndtri(power))

    def enough(n_control: float) -> bool:
        var = v0 / n_control + v1 / (ratio * n_control)
        return bool(mde / math.sqrt(var) - float(z_boundary(var, tau2, alpha)) >= z_power)

    low, high = 2.0, 2.0
    while not enough(high):
        low, high = high, high * 2
        if high > _MAX_SAMPLES:
            return (math.inf, math.inf)
    while high - low > max(1.0, 1e-4 * high):
        mid = (low + high) / 2
        low, high = (low, mid) if enough(mid) else (mid, high)
    return (high, ratio * high)


def eta_seconds(
    required: Mapping[str, float], current: Mapping[str, float], rate_per_second: Mapping[str, float]
) -> float | None:
    """Seconds until every variant has its required samples at the current rates.

    0 when they all have; None when a variant still short of its samples gets no traffic (no ETA
    can be given: the split or the traffic must change).
    """
    worst = 0.0
    for variant, need in required.items():
        missing = need - current.get(variant, 0.0)
        if missing <= 0:
            continue
        rate = rate_per_second.get(variant, 0.0)
        if rate <= 0 or not math.isfinite(missing):
            return None
        worst = max(worst, missing / rate)
    return worst
