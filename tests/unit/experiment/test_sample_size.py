"""Required samples against statsmodels' power solver, and the ETA."""

from __future__ import annotations

import math

import pytest
from foresight.experiment.sample_size import eta_seconds, fixed_horizon_samples, sequential_samples
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize


@pytest.mark.parametrize(("p0", "mde", "ratio"), [(0.8, 0.02, 1.0), (0.1, 0.01, 1 / 9), (0.5, 0.05, 2.0)])
def test_proportions_match_statsmodels(p0: float, mde: float, ratio: float) -> None:
    n0, n1 = fixed_horizon_samples("proportion", p0, p0 * (1 - p0), mde, alpha=0.05, power=0.8, ratio=ratio)
    es = proportion_effectsize(p0 + mde, p0)
    ref = NormalIndPower().solve_power(effect_size=es, alpha=0.05, power=0.8, ratio=ratio)
    assert n0 == pytest.approx(ref, rel=1e-4)
    assert n1 == pytest.approx(ratio * ref, rel=1e-4)


def test_means_match_statsmodels() -> None:
    n0, _ = fixed_horizon_samples("mean", 0.05, 0.02**2, 0.004, alpha=0.01, power=0.9)
    ref = NormalIndPower().solve_power(effect_size=0.004 / 0.02, alpha=0.01, power=0.9, ratio=1.0)
    assert n0 == pytest.approx(ref, rel=1e-4)


def test_sequential_needs_more_than_fixed_but_not_absurdly_more() -> None:
    f0, _ = fixed_horizon_samples("proportion", 0.8, 0.16, 0.02)
    s0, s1 = sequential_samples("proportion", 0.8, 0.16, 0.02)
    assert 1.2 * f0 < s0 < 2.5 * f0
    assert s1 == pytest.approx(s0)


def test_invalid_inputs_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        fixed_horizon_samples("proportion", 0.8, 0.16, 0.0)
    with pytest.raises(ValueError, match="must be positive"):
        sequential_samples("mean", 1.0, 1.0, 0.1, ratio=0)


def test_eta_from_the_slowest_variant() -> None:
    eta = eta_seconds({"a": 1000, "b": 500}, {"a": 400, "b": 450}, {"a": 2.0, "b": 0.1})
    assert eta == 500.0  # b needs 50 at 0.1/s, a needs 600 at 2/s: 500 s vs 300 s
    assert eta_seconds({"a": 10}, {"a": 10}, {}) == 0.0
    assert eta_seconds({"a": 10}, {"a": 5}, {"a": 0.0}) is None
    assert math.isfinite(eta_seconds({"a": 10}, {}, {"a": 1.0}) or math.inf)
