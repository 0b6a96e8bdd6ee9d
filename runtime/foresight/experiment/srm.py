"""Sample-ratio mismatch: is the traffic split what the weights declared?

When a 50/50 experiment ends up with 52/48 on a million requests, something in the assignment is
broken (a variant crashing on some requests, a cache answering for one variant, a bot hashed to
one side) and every comparison built on it is biased. The check is Pearson's chi-square
goodness-of-fit of the observed requests per variant against the declared weights, at a strict
alpha (0.001 by default: it runs at every interval and a false alarm stops decisions).

Requests of one client land on the same variant (sticky routing), so a handful of very heavy
clients can make the split uneven by themselves; the check then flags it too, which is the right
message (the split is not what was declared), though the cause is the traffic, not a bug.
"""

from __future__ import annotations

from collections.abc import Mapping

from scipy import special

from ._base import Record

__all__ = ["SrmResult", "sample_ratio_mismatch"]

SRM_ALPHA = 0.001


class SrmResult(Record):
    """The chi-square test of observed requests against the declared split."""

    chi2: float | None  # None when a variant with weight 0 got requests (mismatch outright)
    df: int
    p_value: float
    mismatch: bool
    observed: dict[str, float]
    expected: dict[str, float]


def sample_ratio_mismatch(
    observed: Mapping[str, float], weights: Mapping[str, float], alpha: float = SRM_ALPHA
) -> SrmResult:
    """Chi-square test of ``observed`` requests per variant against ``weights`` (any scale).

    A variant with weight 0 that still got requests is a mismatch outright (the router should never
    pick it); variants with weight 0 and no requests are left out of the test.
    """
    total_weight = sum(w for w in weights.values() if w > 0)
    if total_weight <= 0:
        raise ValueError("every weight is 0: there is no declared split to check against")
    total = sum(max(0.0, observed.get(v, 0.0)) for v in weights)
    expected = {v: total * w / total_weight for v, w in weights.items() if w > 0}
    seen = {v: max(0.0, observed.get(v, 0.0)) for v in weights}
    stray = sum(n for v, n in seen.items() if weights[v] <= 0)
    if total <= 0:
        return SrmResult(
            chi2=0.0,
            df=max(0, len(expected) - 1),
            p_value=1.0,
            mismatch=False,
            observed=seen,
            expected=expected,
        )
    if stray >= 1.0:
        return SrmResult(
            chi2=None,
            df=max(0, len(expected) - 1),
            p_value=0.0,
            mismatch=True,
            observed=seen,
            expected=expected,
        )
    chi2 = sum((seen[v] - e) ** 2 / e for v, e in expected.items())
    df = len(expected) - 1
    p = float(special.chdtrc(df, chi2)) if df > 0 else 1.0
    return SrmResult(chi2=chi2, df=df, p_value=p, mismatch=p < alpha, observed=seen, expected=expected)
