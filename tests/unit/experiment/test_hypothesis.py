"""The fixed-horizon tests and effect sizes against scipy / statsmodels on the same data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from foresight.experiment.aggregates import Moments, Proportion
from foresight.experiment.hypothesis import (
    cohens_d,
    cohens_h,
    compare,
    holm,
    interval,
    limit_test,
    ratio_test,
)
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint, proportion_effectsize, proportions_ztest


def _moments(x: np.ndarray) -> Moments:
    return Moments(count=x.size, total=float(x.sum()), total_sq=float((x * x).sum()))


@pytest.mark.parametrize(("n0", "n1", "shift"), [(50, 80, 0.3), (2000, 300, 0.05), (12, 9, -1.0)])
def test_welch_matches_scipy_on_the_raw_samples(n0: int, n1: int, shift: float) -> None:
    rng = np.random.default_rng(n0)
    a, b = rng.normal(1.0, 1.0, n0), rng.normal(1.0 + shift, 2.0, n1)
    res = compare(_moments(a), _moments(b), alpha=0.05)
    ref = stats.ttest_ind(b, a, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert res.test == "welch-t"
    assert res.statistic == pytest.approx(ref.statistic, rel=1e-9)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-8)
    assert res.df == pytest.approx(ref.df, rel=1e-9)
    assert (res.ci_low, res.ci_high) == (pytest.approx(ci.low, rel=1e-8), pytest.approx(ci.high, rel=1e-8))
    pooled = math.sqrt(((n0 - 1) * a.var(ddof=1) + (n1 - 1) * b.var(ddof=1)) / (n0 + n1 - 2))
    assert res.effect_size == pytest.approx((b.mean() - a.mean()) / pooled, rel=1e-9)
    assert cohens_d(_moments(a), _moments(b)) == res.effect_size


@pytest.mark.parametrize(
    ("x0", "n0", "x1", "n1"), [(800, 1000, 830, 1000), (45, 900, 12, 100), (5, 20, 9, 21)]
)
def test_two_proportion_z_matches_statsmodels(x0: int, n0: int, x1: int, n1: int) -> None:
    res = compare(Proportion(successes=x0, trials=n0), Proportion(successes=x1, trials=n1))
    z, p = proportions_ztest([x1, x0], [n1, n0])
    assert res.test == "two-proportion-z"
    assert res.statistic == pytest.approx(z, rel=1e-9)
    assert res.p_value == pytest.approx(p, rel=1e-8)
    assert res.difference == pytest.approx(x1 / n1 - x0 / n0)
    assert res.effect_size == pytest.approx(proportion_effectsize(x1 / n1, x0 / n0), rel=1e-12)
    assert cohens_h(x0 / n0, x1 / n1) == res.effect_size
    se = math.sqrt((x0 / n0) * (1 - x0 / n0) / n0 + (x1 / n1) * (1 - x1 / n1) / n1)
    assert res.ci_high - res.ci_low == pytest.approx(2 * 1.959963984540054 * se, rel=1e-9)


def test_compare_refuses_too_little_data_and_mixed_kinds() -> None:
    with pytest.raises(ValueError, match="wait for more traffic"):
        compare(Proportion(successes=1, trials=1), Proportion(successes=3, trials=4))
    with pytest.raises(TypeError, match="same kind of counters"):
        compare(Proportion(successes=1, trials=5), Moments(count=5, total=1, total_sq=1))


def test_limit_test_is_statsmodels_score_test_for_rates_and_scipy_t_for_means() -> None:
    p = limit_test(Proportion(successes=70, trials=1000), 0.05, "greater")
    _, ref = proportions_ztest(70, 1000, value=0.05, alternative="larger", prop_var=0.05)
    assert p == pytest.approx(ref, rel=1e-9)
    x = np.random.default_rng(1).normal(0.11, 0.05, 400)
    p = limit_test(_moments(x), 0.1, "greater")
    assert p == pytest.approx(stats.ttest_1samp(x, 0.1, alternative="greater").pvalue, rel=1e-8)
    p = limit_test(_moments(x), 0.1, "less")
    assert p == pytest.approx(stats.ttest_1samp(x, 0.1, alternative="less").pvalue, rel=1e-8)


def test_ratio_test_at_ratio_one_is_the_one_sided_unpooled_z_test() -> None:
    a = np.random.default_rng(2).normal(1.0, 0.3, 500)
    b = np.random.default_rng(3).normal(1.05, 0.3, 500)
    p = ratio_test(_moments(a), _moments(b), 1.0, "greater")
    z = (b.mean() - a.mean()) / math.sqrt(a.var(ddof=1) / 500 + b.var(ddof=1) / 500)
    assert p == pytest.approx(stats.norm.sf(z), rel=1e-9)
    # Twice the control: a candidate at 2.5x is shown beyond it, one at 1.2x is not.
    assert ratio_test(_moments(a), _moments(2.5 * b), 2.0, "greater") < 1e-6
    assert ratio_test(_moments(a), _moments(1.2 * a), 2.0, "greater") > 0.99


def test_ratio_test_has_a_spread_when_no_error_was_seen_yet() -> None:
    none_yet = Proportion(successes=0, trials=200)
    # Agresti–Caffo: a spread exists, so equal zero rates give p = 0.5 (no evidence either way)
    # and three errors against none is evidence, but not proof, of a doubled error rate.
    assert ratio_test(none_yet, Proportion(successes=0, trials=200), 2.0, "greater") == 0.5
    assert 0.01 < ratio_test(none_yet, Proportion(successes=3, trials=200), 2.0, "greater") < 0.5


def test_intervals_match_statsmodels_wilson_and_scipy_t() -> None:
    low, high = interval(Proportion(successes=81, trials=100), alpha=0.05)
    ref = proportion_confint(81, 100, alpha=0.05, method="wilson")
    assert (low, high) == (pytest.approx(ref[0], rel=1e-9), pytest.approx(ref[1], rel=1e-9))
    x = np.random.default_rng(5).normal(3, 1, 30)
    low, high = interval(_moments(x), alpha=0.1)
    ref = stats.t.interval(0.9, 29, loc=x.mean(), scale=stats.sem(x))
    assert (low, high) == (pytest.approx(ref[0], rel=1e-9), pytest.approx(ref[1], rel=1e-9))


def test_holm_matches_statsmodels() -> None:
    p = [0.01, 0.04, 0.03, 0.005, 0.2]
    ref = multipletests(p, alpha=0.05, method="holm")[1]
    assert holm(p) == pytest.approx(list(ref), rel=1e-12)
