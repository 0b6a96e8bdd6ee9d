"""What the decision policy needs to know about an experiment: the spec, in analysis terms.

The operator builds an :class:`ExperimentConfig` from an ABExperiment's spec (durations parsed to
seconds, ``confidence`` turned into ``alpha``); local simulations and the benchmarks build one
directly. Each field says its unit and why the default. Validation errors name the field and the
fix, as the operator shows them in a status condition.
"""

from __future__ import annotations

import itertools
from typing import Literal

from pydantic import Field, model_validator

from ._base import Record
from .bandits import Algorithm

__all__ = [
    "DEFAULT_STEPS",
    "BanditConfig",
    "ExperimentConfig",
    "GuardConfig",
    "MetricConfig",
    "NoDataPolicy",
    "StepConfig",
    "StrategyConfig",
    "VariantConfig",
]

Kind = Literal["proportion", "mean"]
NAME = r"^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$"

#: Rates: 2 points (0.80 -> 0.82 accuracy) is a difference worth a model change.
DEFAULT_PROPORTION_MDE = 0.02


class VariantConfig(Record):
    name: str = Field(pattern=NAME, max_length=63)
    weight: int = Field(ge=0, le=100, description="weight: declared percent of traffic.")


class MetricConfig(Record):
    """A metric that decides the winner (the first one given is the primary metric)."""

    name: str = Field(pattern=NAME, max_length=63, description="name: the key of its aggregates.")
    kind: Kind = Field(description="kind: proportion (successes / trials) or mean (sum / count).")
    goal: Literal["maximize", "minimize"] = "maximize"
    minimum_detectable_effect: float | None = Field(
        default=None,
        gt=0,
        description="minimumDetectableEffect: absolute, in the metric's units; sizes the test and "
        "the sequential mixture. Default 0.02 for proportions; required for means.",
    )
    rollback_degradation: float | None = Field(
        default=0.3,
        gt=0,
        lt=1,
        description="rollbackDegradation: roll back when the candidate is this fraction worse than "
        "the control in the last interval, and significantly worse (seed 004: 30%); null: never.",
    )

    @model_validator(mode="after")
    def _mde_for_means(self) -> MetricConfig:
        if self.kind == "mean" and self.minimum_detectable_effect is None:
            raise ValueError(
                f"metric {self.name!r} is a mean: set minimumDetectableEffect (the smallest difference "
                "worth detecting, in the metric's units, e.g. 0.005 for 5 ms of latency in seconds)"
            )
        return self

    @property
    def mde(self) -> float:
        return self.minimum_detectable_effect or DEFAULT_PROPORTION_MDE

    @property
    def maximize(self) -> bool:
        return self.goal == "maximize"


class GuardConfig(Record):
    """A metric the candidate must not break: a limit, a margin against the control, or both.

    It **passes** (the candidate may get more traffic or be promoted) when non-inferiority is
    shown: within ``limit`` and within ``(1 + margin)`` times the control (for lower-is-better).
    It is **breached** (roll back) when, in the last interval, the candidate's value is beyond
    ``rollback_factor`` times the limit or the control (seed 004: error rate above 2x the
    threshold, latency above 2x the control) and the candidate is shown to be beyond the limit or
    the margin itself (so that noise on a handful of requests does not roll back).
    """

    name: str = Field(pattern=NAME, max_length=63)
    kind: Kind
    lower_is_better: bool = Field(default=True, description="lowerIsBetter: true for errors, latency.")
    limit: float | None = Field(default=None, description="limit: absolute bound (the API's max / min).")
    margin: float | None = Field(
        default=None, ge=0, lt=1, description="margin: tolerated relative degradation vs the control."
    )
    rollback_factor: float = Field(
        default=2.0, gt=1, description="rollbackFactor: breach beyond factor x limit or x control."
    )

    @model_validator(mode="after")
    def _needs_a_bound(self) -> GuardConfig:
        if self.limit is None and self.margin is None:
            raise ValueError(
                f"guard {self.name!r} has neither a limit nor a margin: set limit (an absolute bound) "
                "or margin (a tolerated relative degradation against the control)"
            )
        return self


class StepConfig(Record):
    weight: int = Field(ge=1, le=100, description="weight: the candidate's percent at this step.")
    pause_seconds: float = Field(gt=0, description="pauseSeconds: hold at least this long.")


#: Seed 004's gradual rollout when no steps are given: 10% -> 50% -> 100%, an hour each.
DEFAULT_STEPS = (
    StepConfig(weight=10, pause_seconds=3600),
    StepConfig(weight=50, pause_seconds=3600),
    StepConfig(weight=100, pause_seconds=3600),
)


class BanditConfig(Record):
    algorithm: Algorithm = "thompson"
    epsilon: float = Field(default=0.1, ge=0, le=1, description="epsilon: epsilon-greedy's exploration.")
    floor: int = Field(
        default=5, ge=0, le=50, description="floor: minimum percent per arm, so every arm stays measured."
    )
    min_change: int = Field(
        default=2,
        ge=0,
        le=100,
        description="minChange: weight changes smaller than this many points are not applied "
        "(against flapping config reloads).",
    )


class NoDataPolicy(Record):
    action: Literal["hold", "fail"] = Field(
        default="hold", description="action: keep waiting, or fail the experiment after maxIntervals."
    )
    max_intervals: int = Field(
        default=6, ge=1, description="maxIntervals: consecutive intervals without data before failing."
    )


class StrategyConfig(Record):
    type: Literal["fixed", "progressive", "bandit"] = "fixed"
    steps: tuple[StepConfig, ...] = ()
    bandit: BanditConfig = BanditConfig()


class ExperimentConfig(Record):
    name: str = Field(default="", description="name: salts the routing hash and seeds the bandit.")
    variants: tuple[VariantConfig, ...] = Field(min_length=2, max_length=8, description="first = control")
    metrics: tuple[MetricConfig, ...] = Field(min_length=1, max_length=8, description="first = primary")
    guards: tuple[GuardConfig, ...] = Field(default=(), max_length=8)
    alpha: float = Field(default=0.05, gt=0, lt=0.5, description="alpha: 1 - the API's confidence.")
    power: float = Field(default=0.8, gt=0.5, lt=1, description="power: for the required sample size.")
    min_samples: int = Field(
        default=1000, ge=10, description="minSamples: per variant before a winner can be declared."
    )
    guard_min_samples: int = Field(
        default=30,
        ge=10,
        description="guardMinSamples: per variant in the window before a guard is tested (the "
        "normal approximation needs some; rollbacks should not wait for minSamples).",
    )
    strategy: StrategyConfig = StrategyConfig()
    analysis_interval_seconds: float = Field(default=300, gt=0)
    cooldown_seconds: float = Field(
        default=0,
        ge=0,
        description="cooldownSeconds: minimum time between two weight changes (not rollbacks).",
    )
    auto_promote: bool = False
    auto_rollback: bool = True
    no_data: NoDataPolicy = NoDataPolicy()
    srm_alpha: float = Field(default=0.001, gt=0, lt=0.5, description="srmAlpha: of the ratio check.")
    suspend: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentConfig:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must be unique, got {names}")
        total = sum(v.weight for v in self.variants)
        if total != 100:
            raise ValueError(f"variants' weights must sum to 100, they sum to {total}")
        keys = [m.name for m in self.metrics] + [g.name for g in self.guards]
        if len(set(keys)) != len(keys):
            raise ValueError(f"metric and guard names share one namespace and must be unique, got {keys}")
        if self.strategy.type == "progressive":
            if len(self.variants) != 2:
                raise ValueError(
                    f"a progressive strategy shifts traffic from one control to one candidate; got "
                    f"{len(self.variants)} variants: use 2, or the fixed or bandit strategy"
                )
            weights = [s.weight for s in self.steps]
            if any(b <= a for a, b in itertools.pairwise(weights)):
                raise ValueError(f"progressive steps must increase the candidate's weight, got {weights}")
        if self.strategy.type == "bandit" and self.strategy.bandit.floor * len(self.variants) > 100:
            raise ValueError(
                f"an exploration floor of {self.strategy.bandit.floor}% for {len(self.variants)} variants "
                "exceeds 100%; lower strategy.bandit.floor"
            )
        return self

    @property
    def control(self) -> str:
        return self.variants[0].name

    @property
    def candidates(self) -> list[str]:
        return [v.name for v in self.variants[1:]]

    @property
    def primary(self) -> MetricConfig:
        return self.metrics[0]

    @property
    def steps(self) -> tuple[StepConfig, ...]:
        """The progressive steps, seed 004's default when none are given."""
        return self.strategy.steps or DEFAULT_STEPS
