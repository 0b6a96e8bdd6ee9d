"""Fixed-horizon tests, effect sizes, non-inferiority and the multiple-testing correction.

What seed 004 asks for, computed from counter aggregates instead of raw samples:

- :func:`compare`: Welch's t-test for means (unequal variances, Welch–Satterthwaite degrees of
  freedom) or the two-proportion z-test for rates, with the effect (candidate - control) and its
  confidence interval, and the standardised effect size (Cohen's d for means, Cohen's h for
  proportions). These p-values are valid for **one** look at a sample size fixed in advance; the
  analysis that looks at every interval decides with :mod:`~foresight.experiment.sequential`
  and reports these next to it, as the familiar numbers.
- :func:`ratio_test` and :func:`limit_test`: one-sided tests of "the candidate is beyond r times
  the control" and "beyond an absolute limit", the building blocks of guard metrics
  (non-inferiority with a margin, and seed 004's rollback rules: 2x the error threshold, 2x the
  control's latency, 30% worse on the primary metric).
- :func:`holm`: Holm–Bonferroni adjusted p-values when several hypotheses decide together.

The ``*_arrays`` functions are the same formulas on numpy arrays; the benchmarks simulate
thousands of experiments through them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from ._base import Record
from .aggregates import Moments, Proportion

__all__ = [
    "Alternative",
    "FixedHorizonTest",
    "cohens_d",
    "cohens_h",
    "compare",
    "holm",
    "interval",
    "limit_test",
    "ratio_test",
    "two_proportion_arrays",
    "welch_arrays",
]

Alternative = Literal["greater", "less"]
Floats = NDArray[np.float64]


class FixedHorizonTest(Record):
    """One candidate-vs-control comparison of one metric, valid at a single look."""

    test: Literal["welch-t", "two-proportion-z"]
    difference: float  # candidate - control, in the metric's units
    relative_difference: float | None  # difference / control mean (None when the control mean is 0)
    ci_low: float
    ci_high: float
    statistic: float
    df: float | None  # Welch–Satterthwaite degrees of freedom (t-test only)
    p_value: float  # two-sided
    effect_size: float
    effect_size_kind: Literal["cohens-d", "cohens-h"]


def welch_arrays(
    mean0: ArrayLike, var0: ArrayLike, n0: ArrayLike, mean1: ArrayLike, var1: ArrayLike, n1: ArrayLike
) -> tuple[Floats, Floats, Floats, Floats, Floats]:
    """Welch's t-test: (difference, standard error, t, degrees of freedom, two-sided p)."""
    m0, v0, c0 = np.asarray(mean0, float), np.asarray(var0, float), np.asarray(n0, float)
    m1, v1, c1 = np.asarray(mean1, float), np.asarray(var1, float), np.asarray(n1, float)
    a, b = v0 / c0, v1 / c1
    se = np.sqrt(a + b)
    diff = m1 - m0
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se > 0, diff / np.where(se > 0, se, 1.0), 0.0)
        # Welch–Satterthwaite; with both variances 0 there is nothing to test (t = 0, p = 1).
        df = np.where(se > 0, (a + b) ** 2 / (a * a / (c0 - 1) + b * b / (c1 - 1)), 1.0)
    p = 2.0 * special.stdtr(df, -np.abs(t))
    return diff, se, t, df, p


def two_proportion_arrays(
    x0: ArrayLike, n0: ArrayLike, x1: ArrayLike, n1: ArrayLike
) -> tuple[Floats, Floats, Floats, Floats]:
    """Two-proportion z-test: (difference, unpooled standard error, z with pooled SE, two-sided p)."""
    s0, c0, s1, c1 = (np.asarray(v, float) for v in (x0, n0, x1, n1))
    p0, p1 = s0 / c0, s1 / c1
    pooled = (s0 + s1) / (c0 + c1)
    se_pooled = np.sqrt(pooled * (1 - pooled) * (1 / c0 + 1 / c1))
    se = np.sqrt(p0 * (1 - p0) / c0 + p1 * (1 - p1) / c1)
    diff = p1 - p0
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se_pooled > 0, diff / np.where(se_pooled > 0, se_pooled, 1.0), 0.0)
    p = 2.0 * special.ndtr(-np.abs(z))
    return diff, se, z, p


def cohens_d(control: Moments, candidate: Moments) -> float:
    """(candidate - control) / pooled standard deviation; 0 when both have no spread."""
    n0, n1 = control.n, candidate.n
    if n0 + n1 <= 2:
        return 0.0
    pooled = ((n0 - 1) * control.variance + (n1 - 1) * candidate.variance) / (n0 + n1 - 2)
    return (candidate.mean - control.mean) / math.sqrt(pooled) if pooled > 0 else 0.0


def cohens_h(p_control: float, p_candidate: float) -> float:
    """Cohen's h: 2·asin(√p_candidate) - 2·asin(√p_control)."""
    return 2.0 * math.asin(math.sqrt(p_candidate)) - 2.0 * math.asin(math.sqrt(p_control))


def compare(
    control: Proportion | Moments, candidate: Proportion | Moments, alpha: float = 0.05
) -> FixedHorizonTest:
    """Welch's t-test or the two-proportion z-test, with the (1 - alpha) CI of the difference."""
    if control.n < 2 or candidate.n < 2:
        raise ValueError(
            f"need at least 2 observations per variant to compare, have {control.n:g} and "
            f"{candidate.n:g}; wait for more traffic"
        )
    relative = (candidate.mean - control.mean) / control.mean if control.mean != 0 else None
    if isinstance(control, Proportion) and isinstance(candidate, Proportion):
        diff, se, z, p = two_proportion_arrays(control.successes, control.n, candidate.successes, candidate.n)
        half = float(special.ndtri(1 - alpha / 2) * se)
        return FixedHorizonTest(
            test="two-proportion-z",
            difference=float(diff),
            relative_difference=relative,
            ci_low=float(diff) - half,
            ci_high=float(diff) + half,
            statistic=float(z),
            df=None,
            p_value=float(p),
            effect_size=cohens_h(control.mean, candidate.mean),
            effect_size_kind="cohens-h",
        )
    if isinstance(control, Moments) and isinstance(candidate, Moments):
        diff, se, t, df, p = welch_arrays(
            control.mean, control.variance, control.n, candidate.mean, candidate.variance, candidate.n
        )
        half = float(special.stdtrit(df, 1 - alpha / 2) * se)
        return FixedHorizonTest(
            test="welch-t",
            difference=float(diff),
            relative_difference=relative,
            ci_low=float(diff) - half,
            ci_high=float(diff) + half,
            statistic=float(t),
            df=float(df),
            p_value=float(p),
            effect_size=cohens_d(control, candidate),
            effect_size_kind="cohens-d",
        )
    raise TypeError(
        f"cannot compare a {type(control).__name__} with a {type(candidate).__name__}: "
        "the variants of one metric must come from the same kind of counters"
    )


def _spread(agg: Proportion | Moments) -> float:
    """Per-observation variance for the one-sided tests; proportions use the Agresti–Caffo
    adjustment (one success and one failure added) so that 0 of 50 errors still has a spread."""
    if isinstance(agg, Proportion):
        p = (agg.successes + 1.0) / (agg.trials + 2.0)
        return p * (1.0 - p)
    return agg.variance


def _one_sided(z: float, alternative: Alternative) -> float:
    return float(special.ndtr(-z) if alternative == "greater" else special.ndtr(z))


def ratio_test(
    control: Proportion | Moments,
    candidate: Proportion | Moments,
    ratio: float,
    alternative: Alternative,
) -> float:
    """One-sided p-value for "candidate > ratio·control" (``greater``) or "< ratio·control" (``less``).

    The null hypothesis is the boundary ``candidate = ratio·control``; the statistic is
    ``(m1 - r·m0) / √(v1/n1 + r²·v0/n0)`` (the delta method of a ratio, linearised). With
    ``ratio = 1 + margin`` and ``less`` it is a non-inferiority test for a metric where lower is
    better; with ``ratio = 2`` and ``greater`` it asks whether the candidate is twice as slow.
    """
    if control.n <= 0 or candidate.n <= 0:
        return 1.0
    se = math.sqrt(_spread(candidate) / candidate.n + ratio * ratio * _spread(control) / control.n)
    gap = candidate.mean - ratio * control.mean
    if se == 0:
        return 0.0 if (gap > 0 if alternative == "greater" else gap < 0) else 1.0
    return _one_sided(gap / se, alternative)


def limit_test(candidate: Proportion | Moments, limit: float, alternative: Alternative) -> float:
    """One-sided p-value for "candidate's mean > limit" (``greater``) or "< limit" (``less``).

    Proportions use the score test (the standard error at the limit, so it exists even when no
    error was seen yet); means use Student's t with n - 1 degrees of freedom.
    """
    n = candidate.n
    if n <= 0:
        return 1.0
    gap = candidate.mean - limit
    if isinstance(candidate, Proportion) and 0.0 < limit < 1.0:
        return _one_sided(gap / math.sqrt(limit * (1.0 - limit) / n), alternative)
    se = math.sqrt(_spread(candidate) / n)
    if se == 0 or n < 2:
        return 0.0 if (gap > 0 if alternative == "greater" else gap < 0) and n >= 2 else 1.0
    t = gap / se
    return float(special.stdtr(n - 1, -t) if alternative == "greater" else special.stdtr(n - 1, t))


def interval(agg: Proportion | Moments, alpha: float = 0.05) -> tuple[float, float]:
    """(1 - alpha) interval of one variant's mean: Wilson for rates, Student's t for means."""
    n = agg.n
    if n <= 0:
        return (math.nan, math.nan)
    if isinstance(agg, Proportion):
        z = float(special.ndtri(1 - alpha / 2))
        p = agg.mean
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return (max(0.0, centre - half), min(1.0, centre + half))
    if n < 2:
        return (agg.mean, agg.mean)
    half = float(special.stdtrit(n - 1, 1 - alpha / 2)) * math.sqrt(agg.variance / n)
    return (agg.mean - half, agg.mean + half)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the input's order (reject where adjusted <= alpha)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted
