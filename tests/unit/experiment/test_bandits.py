"""Bandits: allocations, the exploration floor and caps, and the state's JSON round trip."""

from __future__ import annotations

import pytest
from foresight.experiment.aggregates import Moments, Proportion
from foresight.experiment.bandits import BanditState, allocate, new_bandit_state, observe, percent_weights


def _state(algorithm: str, reward: str = "bernoulli") -> BanditState:
    return new_bandit_state(["a", "b", "c"], algorithm, reward, seed=7)  # type: ignore[arg-type]


DATA = {
    "a": Proportion(successes=800, trials=1000),
    "b": Proportion(successes=880, trials=1000),
    "c": Proportion(successes=790, trials=1000),
}


def test_thompson_sends_most_traffic_to_the_clearly_best_arm_and_keeps_the_floor() -> None:
    s = allocate(observe(_state("thompson"), DATA, maximize=True), floor=5)
    assert s.weights["b"] == 90 and s.weights["a"] == 5 and s.weights["c"] == 5
    assert s.probabilities["b"] > 0.99 and s.rounds == 1


def test_thompson_with_a_minimised_gaussian_reward_prefers_the_faster_arm() -> None:
    lat = {
        "a": Moments(count=500, total=50.0, total_sq=5.5),  # mean 0.10
        "b": Moments(count=500, total=40.0, total_sq=3.5),  # mean 0.08
        "c": Moments(count=1, total=0.1, total_sq=0.01),  # barely measured
    }
    s = allocate(observe(_state("thompson", "gaussian"), lat, maximize=False), floor=5)
    assert max(s.weights, key=s.weights.__getitem__) == "b"
    assert sum(s.weights.values()) == 100


def test_ucb1_tries_untried_arms_first_then_the_highest_bound() -> None:
    fresh = allocate(observe(_state("ucb1"), {"a": DATA["a"]}, maximize=True), floor=0)
    assert fresh.weights == {"a": 0, "b": 50, "c": 50}
    s = allocate(observe(_state("ucb1"), DATA, maximize=True), floor=10)
    assert s.weights == {"a": 10, "b": 80, "c": 10}


def test_epsilon_greedy_spreads_epsilon_over_all_arms() -> None:
    s = allocate(observe(_state("epsilon-greedy"), DATA, maximize=True), floor=0, epsilon=0.3)
    assert s.weights == {"a": 10, "b": 80, "c": 10}


def test_capped_arms_stay_at_the_floor() -> None:
    s = allocate(observe(_state("thompson"), DATA, maximize=True), floor=5, capped={"b"})
    assert s.weights["b"] == 5 and sum(s.weights.values()) == 100


def test_percent_weights_sum_to_100_with_largest_remainders() -> None:
    w = percent_weights({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}, floor=0)
    assert sorted(w.values()) == [33, 33, 34] and sum(w.values()) == 100
    with pytest.raises(ValueError, match="does not fit"):
        percent_weights({"a": 0.5, "b": 0.5}, floor=60)


def test_observe_never_forgets_samples_when_prometheus_returns_fewer() -> None:
    s = observe(_state("thompson"), DATA, maximize=True)
    s2 = observe(s, {"b": Proportion(successes=1, trials=2)}, maximize=True)
    assert s2.arms["b"].n == 1000


def test_state_survives_a_json_round_trip_and_replays_the_same_allocation() -> None:
    s = allocate(observe(_state("thompson"), DATA, maximize=True), floor=5)
    restored = BanditState.model_validate_json(s.model_dump_json(by_alias=True))
    assert restored == s
    assert allocate(restored, floor=5) == allocate(s, floor=5)  # seeded: the operator can restart anywhere
