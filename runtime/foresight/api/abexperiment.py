"""ABExperiment: compare model versions on live traffic, decide with statistics, promote or roll back.

Seed 004 (consistent hashing, t-tests, bandits, gradual rollout, auto-rollback). Anchors: Argo
Rollouts canary steps and analysis, Seldon Core v2 Experiments. The operator writes routing config
and analysis results to status; promotion stays a spec change that a user (or Argo CD) makes.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from .meta import NOT_BLANK, ApiModel, Duration, KindInfo, Query, StatusBase, column, ready_columns
from .rules import at_least, cel, field_rules, keyed_by, matches

__all__ = ["AB_EXPERIMENT", "ABExperimentSpec", "ABExperimentStatus"]

VariantQuery = Annotated[
    Query,
    matches(
        r"\$variant",
        "must contain `$variant` (replaced by each variant's name): without it every variant reads "
        "the same number and no difference can ever be found",
    ),
]
"""PromQL per variant: `$variant` becomes each variant's name."""
MetricName = Annotated[str, Field(min_length=1, max_length=63), NOT_BLANK]


class ExperimentPhase(StrEnum):
    """``status.phase`` values the operator writes today (the analysis controller adds more)."""

    PENDING = "Pending"
    FAILED = "Failed"


class ExperimentReason(StrEnum):
    COLLECTING = "CollectingSamples"
    WINNER_FOUND = "WinnerFound"
    NO_DIFFERENCE = "NoSignificantDifference"
    GUARD_FAILED = "GuardMetricFailed"
    ROLLED_BACK = "RolledBack"


class Variant(ApiModel):
    name: str = Field(
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        max_length=63,
        description="name: the variant's name (e.g. control, candidate).",
    )
    model_version: str = Field(
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        max_length=253,
        description="modelVersion: the ModelVersion it serves.",
    )
    weight: int = Field(ge=0, le=100, description="weight: percent of traffic; weights sum to 100.")


class MetricSpec(ApiModel):
    name: MetricName = Field(description="name: the metric's name.")
    query: VariantQuery = Field(
        description="query: PromQL returning one sample per "
        "variant; it must contain `$variant`, which is replaced by the variant name.",
    )
    goal: Literal["maximize", "minimize"] = Field(
        default="maximize", description="goal: which direction wins."
    )


class GuardMetric(ApiModel):
    model_config = ConfigDict(
        json_schema_extra=field_rules(
            cel(
                "!has(self.max) || !has(self.min) || double(self.min) < double(self.max)",
                "min must be below max (otherwise every candidate fails the guard)",
                field_path=".min",
            )
        )
    )

    name: MetricName = Field(description="name: the guard's name, unique among guardMetrics.")
    query: VariantQuery = Field(description="query: PromQL per variant; it must contain `$variant`.")
    max: float | None = Field(default=None, description="max: the candidate fails above this.")
    min: float | None = Field(default=None, description="min: the candidate fails below this.")


class Step(ApiModel):
    weight: int = Field(ge=0, le=100, description="weight: percent of traffic to the candidate.")
    pause: Annotated[Duration, at_least("1m", "a step shorter than the analysis gathers no samples")] = Field(
        default="1h", description="pause: how long to hold before the next step, at least 1m."
    )


class Strategy(ApiModel):
    type: Literal["fixed", "bandit", "progressive"] = Field(
        default="fixed",
        description="type: fixed "
        "weights, a bandit that shifts traffic to the "
        "better variant, or progressive steps.",
    )
    steps: list[Step] = Field(default_factory=list, max_length=20, description="steps: progressive steps.")
    bandit_algorithm: Literal["thompson", "ucb1", "epsilon-greedy"] = Field(
        default="thompson", description="banditAlgorithm: the bandit."
    )


class ABExperimentSpec(ApiModel):
    service: str = Field(
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        max_length=63,
        description="service: the ClassifierService (or other serving resource) under test.",
    )
    variants: Annotated[list[Variant], keyed_by("name")] = Field(
        min_length=2,
        max_length=8,
        description="variants: the model versions compared, one per name; the first is the control.",
    )
    stickiness_key: str = Field(
        default="X-Client-Id",
        min_length=1,
        max_length=128,
        pattern=r"^[-!#$%&'*+.^_`|~0-9A-Za-z]+$",
        description="stickinessKey: request "
        "header hashed (consistent hashing) so a client stays on one variant (an HTTP header name).",
    )
    primary_metric: MetricSpec = Field(description="primaryMetric: decides the winner.")
    guard_metrics: Annotated[list[GuardMetric], keyed_by("name")] = Field(
        default_factory=list,
        max_length=8,
        description="guardMetrics: a candidate breaking one is rolled back; one per name.",
    )
    min_samples: int = Field(
        default=1000, ge=10, le=1_000_000_000, description="minSamples: per variant before deciding."
    )
    confidence: float = Field(default=0.95, ge=0.5, lt=1, description="confidence: 1 - significance level.")
    strategy: Strategy = Field(
        default_factory=Strategy, description="strategy: how traffic is split over time."
    )
    analysis_interval: Annotated[
        Duration, at_least("30s", "Prometheus has no new samples to analyse more often than it scrapes")
    ] = Field(default="5m", description="analysisInterval: how often to analyse, at least 30s.")
    auto_promote: bool = Field(
        default=False,
        description="autoPromote: route all traffic to a significant "
        "winner (the ModelVersion stage stays a user decision).",
    )
    auto_rollback: bool = Field(
        default=True, description="autoRollback: route all traffic to the control when a guard fails."
    )
    suspend: bool = Field(default=False, description="suspend: freeze weights and analysis.")


AB_EXPERIMENT_RULES = (
    cel(
        "self.variants.map(v, v.weight).sum() == 100",
        "variants' weights must sum to 100",
        field_path=".variants",
    ),
    cel(
        "self.strategy.type != 'progressive' || size(self.strategy.steps) > 0",
        "a progressive strategy needs steps",
        field_path=".strategy.steps",
    ),
    cel(
        "self.guardMetrics.all(g, has(g.max) || has(g.min))",
        "every guard metric needs max or min",
        field_path=".guardMetrics",
    ),
)


class VariantStatus(ApiModel):
    name: str = Field(description="name: the variant.")
    weight: int = Field(ge=0, le=100, description="weight: the current traffic percent.")
    samples: int = Field(default=0, ge=0, description="samples: observations so far.")
    mean: float | None = Field(default=None, description="mean: of the primary metric.")
    stddev: float | None = Field(default=None, description="stddev: of the primary metric.")


class Decision(ApiModel):
    time: str = Field(description="time: when it was decided (RFC 3339).")
    action: str = Field(description="action: e.g. StepForward, Promote, Rollback, Hold.")
    reason: str = Field(description="reason: why.")


class ABExperimentStatus(StatusBase):
    phase: ExperimentPhase | None = Field(
        default=None, description="phase: a one-word summary for `kubectl get`."
    )
    variants: list[VariantStatus] = Field(default_factory=list, description="variants: per-variant results.")
    p_value: float | None = Field(default=None, ge=0, le=1, description="pValue: of the Welch t-test.")
    effect_size: float | None = Field(
        default=None, description="effectSize: Cohen's d, candidate vs control."
    )
    winner: str | None = Field(default=None, description="winner: the significant winner.")
    current_step: int = Field(default=0, ge=0, description="currentStep: progressive step index.")
    decisions: list[Decision] = Field(default_factory=list, max_length=100, description="decisions: history.")


AB_EXPERIMENT = KindInfo(
    kind="ABExperiment",
    plural="abexperiments",
    short_names=("ab",),
    printer_columns=ready_columns(
        column("Service", ".spec.service"),
        column("Winner", ".status.winner"),
        column("P-Value", ".status.pValue", "number", priority=1),
    ),
    spec_model=ABExperimentSpec,
    status_model=ABExperimentStatus,
    description="ABExperiment splits traffic between model versions, analyses the primary and guard "
    "metrics from Prometheus and promotes or rolls back.",
    spec_validations=AB_EXPERIMENT_RULES,
)
