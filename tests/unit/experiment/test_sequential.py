"""The mSPRT: its formula, its confidence sequence, and its validity under continuous monitoring."""

from __future__ import annotations

import math

import numpy as np
import pytest
from foresight.experiment.aggregates import Proportion
from foresight.experiment.hypothesis import two_proportion_arrays
from foresight.experiment.sequential import (
    always_valid_p_values,
    difference_and_variance,
    log_likelihood_ratio,
    msprt_update,
)
from scipy import integrate, stats


@pytest.mark.parametrize(("d", "v", "tau"), [(0.01, 1e-4, 0.02), (-0.3, 0.05, 0.1), (0.0, 2.0, 1.0)])
def test_log_lr_is_the_normal_mixture_integrated_numerically(d: float, v: float, tau: float) -> None:
    sd = math.sqrt(v)

    def integrand(theta: float) -> float:
        return stats.norm.pdf(d, theta, sd) * stats.norm.pdf(theta, 0, tau)

    mixed, _ = integrate.quad(integrand, -12 * tau, 12 * tau, points=[d, 0.0])
    assert float(log_likelihood_ratio(d, v, tau * tau)) == pytest.approx(
        math.log(mixed / stats.norm.pdf(d, 0, sd)), rel=1e-6, abs=1e-9
    )


def test_confidence_sequence_bounds_are_where_the_test_would_just_reject() -> None:
    d, v, tau, alpha = 0.015, 4e-5, 0.02, 0.05
    s = msprt_update(None, d, v, tau, alpha)
    assert s.cs_low is not None and s.cs_high is not None
    for bound in (s.cs_low, s.cs_high):
        assert float(log_likelihood_ratio(d - bound, v, tau * tau)) == pytest.approx(
            math.log(1 / alpha), rel=1e-9
        )


def test_updates_keep_the_running_minimum_and_intersection() -> None:
    first = msprt_update(None, 0.03, 1e-4, 0.02, 0.05)
    second = msprt_update(first, 0.0, 5e-5, 0.02, 0.05)
    assert second.looks == 2
    assert second.p_value == first.p_value  # the evidence at look 1 is not forgotten
    assert first.cs_low is not None and second.cs_low is not None and second.cs_high is not None
    assert second.cs_low >= first.cs_low and second.cs_high <= (first.cs_high or math.inf)
    # No spread yet: no evidence, the state carries over.
    assert msprt_update(second, 0.0, 0.0, 0.02, 0.05).p_value == second.p_value
    assert msprt_update(None, 0.0, 0.0, 0.02, 0.05).p_value == 1.0


def test_verdict_follows_the_sign_once_significant() -> None:
    up = msprt_update(None, 0.05, 1e-4, 0.02, 0.05)
    down = msprt_update(None, -0.05, 1e-4, 0.02, 0.05)
    flat = msprt_update(None, 0.001, 1e-4, 0.02, 0.05)
    assert (up.verdict, down.verdict, flat.verdict) == ("higher", "lower", "continue")


def _streams(n_exp: int, looks: int, batch: int, p0: float, p1: float, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    x0 = rng.binomial(batch, p0, (n_exp, looks)).cumsum(axis=1).astype(float)
    x1 = rng.binomial(batch, p1, (n_exp, looks)).cumsum(axis=1).astype(float)
    n = batch * np.arange(1, looks + 1, dtype=float)
    return x0, x1, np.broadcast_to(n, x0.shape)


def test_aa_streams_checked_at_every_look_stay_at_alpha_where_naive_testing_does_not() -> None:
    """1,000 experiments without a difference, looked at 40 times each. With a fixed seed the
    naive repeated z-test declares a winner in about a quarter of them; the mSPRT must stay at 5%
    (plus 3 standard errors of the simulation). A naive method would fail this test."""
    alpha = 0.05
    x0, x1, n = _streams(1000, 40, 250, 0.8, 0.8, seed=11)
    diff, _, _, p_naive = two_proportion_arrays(x0, n, x1, n)
    p0, p1 = x0 / n, x1 / n
    var = p0 * (1 - p0) / n + p1 * (1 - p1) / n
    p_seq = always_valid_p_values(log_likelihood_ratio(diff, var, 0.02**2))
    naive_rate = float((p_naive <= alpha).any(axis=1).mean())
    seq_rate = float((p_seq[:, -1] <= alpha).mean())
    assert naive_rate > 0.15
    assert seq_rate <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / 1000)


def test_the_scalar_update_and_the_array_path_agree() -> None:
    x0, x1, n = _streams(3, 12, 400, 0.8, 0.83, seed=2)
    p0, p1 = x0 / n, x1 / n
    var = p0 * (1 - p0) / n + p1 * (1 - p1) / n
    paths = always_valid_p_values(log_likelihood_ratio(p1 - p0, var, 0.02**2))
    for i in range(3):
        state = None
        for k in range(12):
            d, v = difference_and_variance(
                Proportion(successes=x0[i, k], trials=n[i, k]), Proportion(successes=x1[i, k], trials=n[i, k])
            )
            state = msprt_update(state, d, v, 0.02, 0.05)
            assert state.p_value == pytest.approx(paths[i, k], rel=1e-9)


def test_a_true_lift_is_found() -> None:
    x0, x1, n = _streams(300, 40, 500, 0.8, 0.83, seed=5)
    p0, p1 = x0 / n, x1 / n
    var = p0 * (1 - p0) / n + p1 * (1 - p1) / n
    p_seq = always_valid_p_values(log_likelihood_ratio(p1 - p0, var, 0.02**2))
    assert (p_seq[:, -1] <= 0.05).mean() > 0.9
