"""Multi-armed bandits that set the traffic weights between analysis intervals.

A bandit here is batched: Prometheus delivers cumulative counts per variant at each analysis, the
bandit turns them into an allocation, and the allocation becomes integer percent weights for the
router until the next analysis. Algorithms:

- ``thompson``: the share of each arm is its posterior probability of being the best arm
  (Beta(1 + successes, 1 + failures) for rates, Normal(mean, variance / n) for means), estimated
  from seeded posterior draws, so the same state always gives the same weights;
- ``ucb1``: all traffic to the arm with the highest upper confidence bound
  ``mean + scale·√(2 ln N / n)`` (scale 1 for rates in [0, 1], the pooled standard deviation for
  means); untried arms first;
- ``epsilon-greedy``: ``1 - ε`` to the arm with the best mean, ``ε`` spread over all arms.

Then the **exploration floor**: every arm keeps at least ``floor`` percent, so an arm that started
unlucky is still measured, and arms not cleared by the guard metrics are **capped** at the floor
(the bandit may not shift traffic to an arm whose guards have not passed). Weights are integers
summing to 100 (largest remainder), the unit of the API's ``weight`` fields and the router's input.

The state (:class:`BanditState`) is small JSON: the latest per-arm counts, the round, the seed
and the last allocation; it lives in the experiment's status and survives operator restarts.
Counts only ever grow in it: a Prometheus answer with fewer samples than already seen (a gap
after a Prometheus restart) keeps the larger count.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Literal

import numpy as np
from pydantic import Field

from ._base import Record
from .aggregates import Moments, Proportion

__all__ = [
    "Algorithm",
    "ArmStats",
    "BanditState",
    "allocate",
    "new_bandit_state",
    "observe",
    "percent_weights",
]

Algorithm = Literal["thompson", "ucb1", "epsilon-greedy"]
Reward = Literal["bernoulli", "gaussian"]

THOMPSON_DRAWS = 4000  # P(best) to about ±0.8 points; enough for integer percent weights


class ArmStats(Record):
    """An arm's cumulative observations, in reward units (higher is better)."""

    n: float = 0.0
    total: float = 0.0  # sum of rewards (successes for Bernoulli rewards)
    total_sq: float = 0.0  # sum of squared rewards

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n > 0 else 0.0

    @property
    def variance(self) -> float:
        if self.n < 2:
            return 0.0
        return max(0.0, (self.total_sq - self.total * self.total / self.n) / (self.n - 1))


class BanditState(Record):
    algorithm: Algorithm
    reward: Reward
    seed: int = 0
    rounds: int = 0
    arms: dict[str, ArmStats]
    probabilities: dict[str, float] = Field(default_factory=dict)
    weights: dict[str, int] = Field(default_factory=dict)


def new_bandit_state(
    variants: Collection[str], algorithm: Algorithm, reward: Reward, seed: int = 0
) -> BanditState:
    if len(variants) < 2:
        raise ValueError(f"a bandit needs at least 2 variants, got {list(variants)}")
    return BanditState(algorithm=algorithm, reward=reward, seed=seed, arms={v: ArmStats() for v in variants})


def _reward_stats(agg: Proportion | Moments, maximize: bool) -> ArmStats:
    if isinstance(agg, Proportion):
        wins = agg.successes if maximize else agg.trials - agg.successes
        return ArmStats(n=agg.trials, total=wins, total_sq=wins)
    sign = 1.0 if maximize else -1.0
    return ArmStats(n=agg.count, total=sign * agg.total, total_sq=agg.total_sq)


def observe(
    state: BanditState, aggregates: Mapping[str, Proportion | Moments], maximize: bool
) -> BanditState:
    """The state with each arm's cumulative counts replaced by ``aggregates`` where they are newer."""
    arms = dict(state.arms)
    for variant, agg in aggregates.items():
        if variant not in arms:
            continue
        stats = _reward_stats(agg, maximize)
        if stats.n >= arms[variant].n:
            arms[variant] = stats
    return state.model_copy(update={"arms": arms})


def _thompson(state: BanditState, names: list[str], rng: np.random.Generator) -> np.ndarray:
    arms = [state.arms[v] for v in names]
    if state.reward == "bernoulli":
        draws = np.stack(
            [rng.beta(1.0 + a.total, 1.0 + max(0.0, a.n - a.total), THOMPSON_DRAWS) for a in arms]
        )
    else:
        seen = [a for a in arms if a.n >= 2]
        if not seen:
            return np.full(len(names), 1.0 / len(names))
        pooled_mean = sum(a.total for a in seen) / sum(a.n for a in seen)
        pooled_sd = math.sqrt(
            sum(a.variance * (a.n - 1) for a in seen) / max(1.0, sum(a.n - 1 for a in seen))
        )
        pooled_sd = pooled_sd or 1.0
        draws = np.stack(
            [
                rng.normal(a.mean, max(math.sqrt(a.variance / a.n), 1e-12), THOMPSON_DRAWS)
                if a.n >= 2
                # Unmeasured arm: as uncertain as one observation around the others' mean.
                else rng.normal(pooled_mean, pooled_sd, THOMPSON_DRAWS)
                for a in arms
            ]
        )
    best = np.argmax(draws, axis=0)
    return np.bincount(best, minlength=len(names)) / THOMPSON_DRAWS


def _ucb1(state: BanditState, names: list[str]) -> np.ndarray:
    arms = [state.arms[v] for v in names]
    untried = np.array([a.n < 1 for a in arms])
    if untried.any():
        return untried / untried.sum()
    total = sum(a.n for a in arms)
    if state.reward == "bernoulli":
        scale = 1.0
    else:
        scale = math.sqrt(sum(a.variance * (a.n - 1) for a in arms) / max(1.0, total - len(arms))) or 1.0
    index = np.array([a.mean + scale * math.sqrt(2.0 * math.log(total) / a.n) for a in arms])
    top = index >= index.max() - 1e-12 * max(1.0, abs(index.max()))
    return top / top.sum()


def _epsilon_greedy(state: BanditState, names: list[str], epsilon: float) -> np.ndarray:
    arms = [state.arms[v] for v in names]
    k = len(names)
    if any(a.n < 1 for a in arms):
        return np.full(k, 1.0 / k)
    means = np.array([a.mean for a in arms])
    top = means >= means.max()
    return (1.0 - epsilon) * top / top.sum() + epsilon / k


def percent_weights(
    probabilities: Mapping[str, float], floor: int, capped: Collection[str] = ()
) -> dict[str, int]:
    """Integer percents summing to 100: ``floor`` for every arm, the rest split by ``probabilities``
    among the arms not ``capped`` (capped arms keep exactly the floor)."""
    names = list(probabilities)
    k = len(names)
    if floor < 0 or floor * k > 100:
        raise ValueError(f"an exploration floor of {floor}% for {k} arms does not fit in 100%; lower it")
    free = [v for v in names if v not in capped]
    if not free:
        raise ValueError("every arm is capped at the floor: at least the control must stay uncapped")
    rest = 100 - floor * k
    mass = np.array([max(0.0, probabilities[v]) for v in free])
    mass = mass / mass.sum() if mass.sum() > 0 else np.full(len(free), 1.0 / len(free))
    exact = mass * rest
    whole = np.floor(exact).astype(int)
    # Largest remainder: the points lost to flooring go to the largest fractions (ties by name).
    order = sorted(range(len(free)), key=lambda i: (-(exact[i] - whole[i]), free[i]))
    for i in order[: rest - int(whole.sum())]:
        whole[i] += 1
    out = dict.fromkeys(names, floor)
    for v, w in zip(free, whole, strict=True):
        out[v] = floor + int(w)
    return out


def allocate(
    state: BanditState, *, floor: int, epsilon: float = 0.1, capped: Collection[str] = ()
) -> BanditState:
    """The next round: the algorithm's allocation and the integer weights it gives."""
    names = sorted(state.arms)
    if state.algorithm == "thompson":
        probs = _thompson(state, names, np.random.default_rng([state.seed, state.rounds]))
    elif state.algorithm == "ucb1":
        probs = _ucb1(state, names)
    else:
        probs = _epsilon_greedy(state, names, epsilon)
    probabilities = {v: float(p) for v, p in zip(names, probs, strict=True)}
    return state.model_copy(
        update={
            "rounds": state.rounds + 1,
            "probabilities": probabilities,
            "weights": percent_weights(probabilities, floor, capped),
        }
    )
