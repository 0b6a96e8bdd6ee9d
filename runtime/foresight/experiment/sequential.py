"""The sequential test: an always-valid mixture SPRT (mSPRT) for a difference of means or rates.

Looking at a fixed-horizon p-value at every analysis interval and stopping at the first p < 0.05
declares a winner in far more than 5% of experiments without a true difference (the benchmark
``bench/ab_statistics.py`` measures it). The mSPRT of Johari, Koomen, Pekelis and Walsh ("Always
valid inference", 2015/2022) keeps the false-positive rate at alpha however often it is looked at:

- the estimate ``d = mean(candidate) - mean(control)`` has variance ``V = v1/n1 + v0/n0`` (plug-in
  variances; the CLT makes ``d`` close to normal once each arm has ``minSamples``);
- against ``H0: θ = θ0`` the likelihood ratio mixed over ``θ ~ N(θ0, τ²)`` is
  ``Λ = √(V / (V + τ²)) · exp((d - θ0)² τ² / (2 V (V + τ²)))``, a non-negative martingale under
  the null, so by Ville's inequality ``P(Λ ever >= 1/α) <= α``;
- the **always-valid p-value** is the running minimum of ``1/Λ(0)``; the **confidence sequence**
  is the running intersection of ``{θ0 : Λ(θ0) < 1/α}``: the effect is inside it at all looks at
  once with probability ``1 - α``.

``τ`` is set to the minimum detectable effect: the mixture then puts its weight where the effects
worth detecting are, and the benchmark shows the test reaching a 2-point lift about as fast as a
fixed-horizon test on average. The martingale argument needs a fixed split; when the weights change
(progressive steps, bandits) the cumulative means are an approximation, as they are for every
anchor (Argo Rollouts, Flagger) that compares cumulative metrics.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._base import Record
from .aggregates import Moments, Proportion

__all__ = [
    "SequentialState",
    "always_valid_p_values",
    "difference_and_variance",
    "log_likelihood_ratio",
    "msprt_update",
    "z_boundary",
]

Floats = NDArray[np.float64]
#: ``higher`` / ``lower``: the candidate's mean is significantly above / below the control's.
Verdict = Literal["continue", "higher", "lower"]


class SequentialState(Record):
    """The running mSPRT of one comparison (candidate vs control on one metric); kept in status."""

    tau: float  # mixture standard deviation, in the metric's units (the minimum detectable effect)
    looks: int  # analyses that updated it
    estimate: float  # candidate - control at the last look
    log_lr: float  # log Λ(0) at the last look
    p_value: float  # always-valid p-value: min over looks of 1/Λ(0), at most 1
    cs_low: float | None  # confidence sequence: the running intersection's bounds (None: unbounded)
    cs_high: float | None
    verdict: Verdict = "continue"


def log_likelihood_ratio(difference: ArrayLike, variance: ArrayLike, tau2: float) -> Floats:
    """log Λ(0) of the normal-mixture SPRT; 0 (no evidence) where the variance is not positive."""
    d, v = np.asarray(difference, float), np.asarray(variance, float)
    ok = v > 0
    safe = np.where(ok, v, 1.0)
    out = 0.5 * np.log(safe / (safe + tau2)) + d * d * tau2 / (2.0 * safe * (safe + tau2))
    return np.where(ok, out, 0.0)


def z_boundary(variance: ArrayLike, tau2: float, alpha: float) -> Floats:
    """|d| / √V at which Λ(0) reaches 1/alpha, for an estimate with variance ``variance``."""
    v = np.asarray(variance, float)
    return np.sqrt((v + tau2) / tau2 * (2.0 * math.log(1.0 / alpha) + np.log((v + tau2) / v)))


def always_valid_p_values(log_lr_paths: ArrayLike) -> Floats:
    """Always-valid p-values along the last axis (looks): the running minimum of min(1, 1/Λ)."""
    p = np.minimum(1.0, np.exp(-np.asarray(log_lr_paths, float)))
    return np.minimum.accumulate(p, axis=-1)


def difference_and_variance(
    control: Proportion | Moments, candidate: Proportion | Moments
) -> tuple[float, float]:
    """(candidate - control, variance of that difference) from the plug-in variances."""
    if control.n <= 0 or candidate.n <= 0:
        return (candidate.mean - control.mean, math.inf)
    return (
        candidate.mean - control.mean,
        candidate.variance / candidate.n + control.variance / control.n,
    )


def msprt_update(
    previous: SequentialState | None, difference: float, variance: float, tau: float, alpha: float
) -> SequentialState:
    """One more look: update the always-valid p-value and the confidence sequence.

    ``difference`` is candidate - control on the cumulative data, ``variance`` its variance
    (:func:`difference_and_variance`). A non-positive or infinite variance adds no evidence.
    """
    if tau <= 0:
        raise ValueError(f"the mixture's tau must be positive (the minimum detectable effect), got {tau}")
    tau2 = tau * tau
    if not (math.isfinite(variance) and variance > 0):
        # No spread yet (e.g. 0 errors on both sides): this look adds no evidence.
        if previous is not None:
            return previous.model_copy(update={"looks": previous.looks + 1, "estimate": difference})
        return SequentialState(
            tau=tau, looks=1, estimate=difference, log_lr=0.0, p_value=1.0, cs_low=None, cs_high=None
        )
    log_lr = float(log_likelihood_ratio(difference, variance, tau2))
    p_now = math.exp(-log_lr) if log_lr > 0 else 1.0
    half = math.sqrt(variance) * float(z_boundary(variance, tau2, alpha))
    low, high = difference - half, difference + half
    if previous is not None:
        p_now = min(p_now, previous.p_value)
        new_low = low if previous.cs_low is None else max(low, previous.cs_low)
        new_high = high if previous.cs_high is None else min(high, previous.cs_high)
        # An empty intersection happens with probability <= alpha (or when the plug-in variance
        # was off early on); then this look's interval alone is reported instead of nothing.
        if new_low <= new_high:
            low, high = new_low, new_high
    verdict: Verdict = "continue"
    if p_now <= alpha and low > 0:
        verdict = "higher"
    elif p_now <= alpha and high < 0:
        verdict = "lower"
    return SequentialState(
        tau=tau,
        looks=(previous.looks if previous else 0) + 1,
        estimate=difference,
        log_lr=log_lr,
        p_value=p_now,
        cs_low=low,
        cs_high=high,
        verdict=verdict,
    )
