"""Per-variant aggregates of a metric, built from Prometheus counters, and the math on them.

An experiment never sees individual requests: the serving pods count, Prometheus stores the
counters, the analysis reads sums. So every statistic here starts from sufficient statistics that
counters can carry:

- a **rate** (accuracy from feedback, error rate from requests) is ``successes / trials``:
  :class:`Proportion`;
- a **continuous** metric (latency) is ``count``, ``sum`` and ``sum of squares``:
  :class:`Moments`. When only a histogram is exported, :func:`moments_from_histogram` estimates
  the moments from the buckets (midpoints; the variance is then approximate).

Counters over a window come from ``increase(...)`` queries, which Prometheus extrapolates, so the
numbers are floats, not integers. :func:`delta` turns two cumulative snapshots into the window
between them (the guards look at the last interval, not at the whole experiment).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import Field

from ._base import Record

__all__ = ["Aggregate", "Moments", "Proportion", "delta", "moments_from_histogram"]


class Proportion(Record):
    """``successes`` out of ``trials`` (e.g. correct feedback out of all feedback)."""

    kind: Literal["proportion"] = "proportion"
    successes: float = Field(ge=0, description="successes: events counted as a success.")
    trials: float = Field(ge=0, description="trials: all events.")

    @property
    def n(self) -> float:
        return self.trials

    @property
    def mean(self) -> float:
        """The observed rate; 0 when there are no trials (callers check ``n`` first)."""
        return min(1.0, self.successes / self.trials) if self.trials > 0 else 0.0

    @property
    def variance(self) -> float:
        """Bernoulli variance p(1-p) of one trial."""
        p = self.mean
        return p * (1.0 - p)


class Moments(Record):
    """``count`` observations with their ``total`` and ``total_sq`` (sum of squares)."""

    kind: Literal["mean"] = "mean"
    count: float = Field(ge=0, description="count: observations.")
    total: float = Field(description="total: sum of the observations.")
    total_sq: float = Field(ge=0, description="totalSq: sum of the squared observations.")

    @property
    def n(self) -> float:
        return self.count

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count > 0 else 0.0

    @property
    def variance(self) -> float:
        """Unbiased sample variance from the sums, clamped at 0 (rounding can make it negative)."""
        if self.count < 2:
            return 0.0
        return max(0.0, (self.total_sq - self.total * self.total / self.count) / (self.count - 1))


Aggregate = Annotated[Proportion | Moments, Field(discriminator="kind")]


def moments_from_histogram(
    upper_bounds: Sequence[float], cumulative_counts: Sequence[float], total: float | None = None
) -> Moments:
    """Moments estimated from a Prometheus histogram's cumulative ``_bucket`` counts.

    Each bucket's observations are placed at its midpoint (the ``+Inf`` bucket at its lower bound:
    nothing better is known). ``total`` (the histogram's ``_sum``) replaces the estimated sum when
    given, so the mean is exact and only the variance is approximate.
    """
    if len(upper_bounds) != len(cumulative_counts):
        raise ValueError(
            f"{len(upper_bounds)} bucket bounds but {len(cumulative_counts)} counts: "
            "pass one cumulative count per `le` bound"
        )
    pairs = sorted(zip(upper_bounds, cumulative_counts, strict=True))
    count = 0.0
    est_sum = 0.0
    est_sq = 0.0
    lower = 0.0
    previous = 0.0
    for bound, cumulative in pairs:
        # Counters from different scrapes can make a cumulative series dip; never count negative.
        in_bucket = max(0.0, cumulative - previous)
        previous = max(previous, cumulative)
        point = lower if math.isinf(bound) else (lower + bound) / 2.0
        count += in_bucket
        est_sum += in_bucket * point
        est_sq += in_bucket * point * point
        if not math.isinf(bound):
            lower = bound
    if total is not None and count > 0:
        # Keep the estimated spread around the exact mean: shift the second moment with the mean.
        est_mean = est_sum / count
        exact_mean = total / count
        est_sq += count * (exact_mean * exact_mean - est_mean * est_mean)
        est_sum = total
    return Moments(count=count, total=est_sum, total_sq=max(0.0, est_sq))


def delta(now: Proportion | Moments, before: Proportion | Moments | None) -> Proportion | Moments:
    """The aggregate of the window between two cumulative snapshots.

    A snapshot that went down (a counter lost in Prometheus, or ``increase()``'s extrapolation
    jitter when nothing new arrived) cannot be subtracted meaningfully; then the window is taken
    to be ``now`` as a whole when it shrank a lot, and empty when it is only jitter.
    """
    if before is None:
        return now
    if isinstance(now, Proportion) and isinstance(before, Proportion):
        if now.trials < before.trials:
            return now if now.trials < 0.5 * before.trials else Proportion(successes=0, trials=0)
        trials = now.trials - before.trials
        return Proportion(successes=min(trials, max(0.0, now.successes - before.successes)), trials=trials)
    if isinstance(now, Moments) and isinstance(before, Moments):
        if now.count < before.count:
            return now if now.count < 0.5 * before.count else Moments(count=0, total=0, total_sq=0)
        return Moments(
            count=now.count - before.count,
            total=now.total - before.total,
            total_sq=max(0.0, now.total_sq - before.total_sq),
        )
    raise TypeError(
        f"cannot subtract a {type(before).__name__} snapshot from a {type(now).__name__}: "
        "a metric changed its kind during the experiment; restart the experiment"
    )
