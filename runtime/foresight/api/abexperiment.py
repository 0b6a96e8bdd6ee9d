"""ABExperiment: compare model versions on live traffic, decide with statistics, promote or roll back.

Seed 004 (consistent hashing, t-tests, bandits, gradual rollout, auto-rollback). Anchors: Argo
Rollouts canary steps and analysis, Flagger, Seldon Core v2 Experiments. The operator writes the
effective weights into the service's routing ConfigMap and the analysis into status; promotion
stays a spec change that a user (or Argo CD) makes (``status.promotion`` says which).

Metrics are read from Prometheus as **counters** summed per ``variant`` label, never as one
number per variant: a statistic needs the sample count and the spread, which only counters carry
(successes / trials for rates; count, sum and sum of squares, or histogram buckets, for means).
``builtin`` names the counters the classifier service exports (:mod:`foresight.experiment.counters`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from .meta import (
    LABEL_NAME_PATTERN,
    PROMETHEUS_RESERVED,
    ApiModel,
    Duration,
    HttpUrl,
    KindInfo,
    SecretKeyRef,
    StatusBase,
    column,
    ready_columns,
)
from .rules import at_least, cel, field_rules, keyed_by, not_matching

__all__ = [
    "AB_EXPERIMENT",
    "MAX_DECISIONS",
    "PROMQL_OPS",
    "ABExperimentSpec",
    "ABExperimentStatus",
    "ExperimentPhase",
    "ExperimentReason",
]

MetricName = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$")]
"""A metric's or guard's name in the experiment (lowercase: it keys status and Prometheus labels)."""
PromMetricName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")]
NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
MAX_DECISIONS = 50
"""``status.decisions`` keeps the newest this many (each with its numbers); counts are kept in full."""
MAX_STEPS = 20


class ExperimentPhase(StrEnum):
    """``status.phase``: the experiment's one-word summary."""

    PENDING = "Pending"
    """Not analysed yet (references being resolved, or waiting for the first interval)."""
    RUNNING = "Running"
    WINNER_FOUND = "WinnerFound"
    """A significant winner, without autoPromote (the strategy goes on)."""
    PROMOTED = "Promoted"
    """The winner gets 100% of the traffic (final until the spec changes)."""
    ROLLED_BACK = "RolledBack"
    """The control gets 100% after a guard breach (final until the spec changes)."""
    FAILED = "Failed"
    SUSPENDED = "Suspended"


class ExperimentReason(StrEnum):
    """Reasons of an ABExperiment's ``Ready`` condition: the analysis's (the same words as
    :class:`foresight.experiment.decision.Reason`) and the operator's own."""

    COLLECTING = "CollectingSamples"
    NO_DIFFERENCE = "NoSignificantDifference"
    WINNER_FOUND = "WinnerFound"
    CONTROL_WINS = "ControlWins"
    GUARD_BREACHED = "GuardBreached"
    PRIMARY_DEGRADED = "PrimaryDegraded"
    NO_DATA = "NoData"
    NO_DATA_TIMEOUT = "NoDataTimeout"
    SAMPLE_RATIO_MISMATCH = "SampleRatioMismatch"
    STEP_PAUSE = "StepPause"
    WAITING_FOR_GUARDS = "WaitingForGuards"
    STEP_PASSED = "StepPassed"
    STEPS_COMPLETED = "StepsCompleted"
    BANDIT = "BanditReweighted"
    COOLDOWN = "Cooldown"
    SUSPENDED = "Suspended"
    FINISHED = "Finished"
    # The operator's: references, Prometheus, routing.
    SERVICE_NOT_FOUND = "ServiceNotFound"
    MODEL_VERSION_NOT_FOUND = "ModelVersionNotFound"
    MODEL_VERSION_NOT_READY = "ModelVersionNotReady"
    UNSUPPORTED_ARTIFACT = "UnsupportedArtifact"
    """A variant's ModelVersion has no ONNX artifact on a PVC the serving pods can mount."""
    PROMETHEUS_UNAVAILABLE = "PrometheusUnavailable"
    PROMQL_ERROR = "PromQLError"
    ROUTING_CONFLICT = "RoutingConflict"
    """Another ABExperiment already routes the service's traffic."""
    VARIANTS_NOT_LOADED = "VariantsNotLoaded"
    """The service's pods do not load every variant yet (rolling out)."""


# --- metric sources ----------------------------------------------------------------------------


MatcherLabel = Annotated[
    str,
    Field(pattern=LABEL_NAME_PATTERN, max_length=128),
    PROMETHEUS_RESERVED,
    not_matching(r"^variant$", "the variant label is what the experiment groups by: do not match on it"),
]


PROMQL_OPS = {"Equal": "=", "NotEqual": "!=", "Match": "=~", "NotMatch": "!~"}
"""A matcher's ``op`` as PromQL writes it."""


class LabelMatcher(ApiModel):
    label: MatcherLabel = Field(description="label: a label name (not `variant`, not starting with `__`).")
    # Words, as Kubernetes writes operators (and `=` unquoted, as Go's YAML writes it, is YAML 1.1's
    # value indicator, which PyYAML cannot read back).
    op: Literal["Equal", "NotEqual", "Match", "NotMatch"] = Field(
        default="Equal",
        description="op: Equal (=), NotEqual (!=), Match (=~, an RE2 regular expression) or NotMatch (!~).",
    )
    value: str = Field(default="", max_length=1024, description="value: the value or regular expression.")


class CounterSeries(ApiModel):
    metric: PromMetricName = Field(description="metric: a counter's name, e.g. `app_requests_total`.")
    matchers: Annotated[list[LabelMatcher], Field(max_length=16)] = Field(
        default_factory=list, description="matchers: label matchers that select the counter's series."
    )


class RateCounters(ApiModel):
    """A rate per variant: ``successes / trials``, both counters with a ``variant`` label."""

    successes: CounterSeries = Field(description="successes: events that count as a success.")
    trials: CounterSeries = Field(description="trials: all events.")


class MomentCounters(ApiModel):
    """A mean per variant from three counters with a ``variant`` label (exact mean and variance)."""

    count: CounterSeries = Field(description="count: observations (e.g. `..._count`).")
    sum: CounterSeries = Field(description="sum: the sum of the observations (e.g. `..._sum`).")
    sum_of_squares: CounterSeries = Field(description="sumOfSquares: the sum of their squares.")


class HistogramCounters(ApiModel):
    """A mean per variant from a Prometheus histogram (the variance is estimated from the buckets)."""

    name: PromMetricName = Field(description="name: the histogram's base name (without `_bucket`).")
    matchers: Annotated[list[LabelMatcher], Field(max_length=16)] = Field(
        default_factory=list, description="matchers: label matchers that select its series."
    )


Builtin = Literal["accuracy", "errorRate", "latency"]
_ONE_SOURCE = cel(
    "[has(self.builtin), has(self.rate), has(self.moments), has(self.histogram)].exists_one(x, x)",
    "give exactly one source: builtin (accuracy, errorRate, latency), rate, moments or histogram",
)
_MEAN_SOURCE = (
    "(has(self.moments) || has(self.histogram) || (has(self.builtin) && self.builtin == 'latency'))"
)


class MetricSource(ApiModel):
    """Where a metric's counters are: one of ``builtin``, ``rate``, ``moments``, ``histogram``."""

    builtin: Builtin | None = Field(
        default=None,
        description="builtin: the classifier service's own counters: accuracy (correct feedback out "
        "of all feedback), errorRate (5xx out of all classify requests) or latency (seconds per "
        "classify request).",
    )
    rate: RateCounters | None = Field(default=None, description="rate: successes / trials counters.")
    moments: MomentCounters | None = Field(
        default=None, description="moments: count, sum and sum-of-squares counters."
    )
    histogram: HistogramCounters | None = Field(default=None, description="histogram: a histogram.")


class Metric(MetricSource):
    model_config = ConfigDict(
        json_schema_extra=field_rules(
            _ONE_SOURCE,
            cel(
                "!has(self.builtin) || (self.builtin == 'accuracy') == (self.goal == 'maximize')",
                "accuracy is higher-is-better (goal: maximize); errorRate and latency are lower-is-better "
                "(goal: minimize)",
                field_path=".goal",
            ),
            cel(
                f"has(self.minimumDetectableEffect) || !{_MEAN_SOURCE}",
                "a mean (latency, moments, histogram) needs minimumDetectableEffect in its units, e.g. "
                "0.005 for 5 ms of latency in seconds",
                field_path=".minimumDetectableEffect",
            ),
            cel(
                f"!has(self.minimumDetectableEffect) || self.minimumDetectableEffect < 1.0 || {_MEAN_SOURCE}",
                "a rate's minimumDetectableEffect is an absolute difference below 1 (0.02 = 2 points)",
                field_path=".minimumDetectableEffect",
            ),
        )
    )

    name: MetricName = Field(description="name: the metric's name in status and decisions.")
    goal: Literal["maximize", "minimize"] = Field(
        default="maximize", description="goal: which direction wins."
    )
    minimum_detectable_effect: float | None = Field(
        default=None,
        gt=0,
        description="minimumDetectableEffect: the smallest absolute difference worth detecting, in the "
        "metric's units; it sizes the test (required samples, ETA) and the sequential test. Default "
        "0.02 for rates; required for means.",
    )
    rollback_degradation: float = Field(
        default=0.3,
        ge=0,
        lt=1,
        description="rollbackDegradation: roll back when the candidate is this fraction worse than the "
        "control in the last interval and shown worse (seed 004: 0.3, 30%); 0 turns the rule off.",
    )


class Guard(MetricSource):
    model_config = ConfigDict(
        json_schema_extra=field_rules(
            _ONE_SOURCE,
            cel(
                "has(self.max) || has(self.min) || has(self.margin)",
                "a guard needs max, min (an absolute limit) or margin (relative to the control)",
            ),
            cel(
                "!(has(self.max) && has(self.min))",
                "give max or min, not both (two guards make a band)",
                field_path=".min",
            ),
            cel(
                "has(self.max) || has(self.min) || has(self.goal) || has(self.builtin)",
                "a guard with only a margin needs goal: minimize (errors, latency) or maximize",
                field_path=".goal",
            ),
            cel(
                "!has(self.goal) || !has(self.max) || self.goal == 'minimize'",
                "max bounds a lower-is-better metric: goal must be minimize",
                field_path=".goal",
            ),
            cel(
                "!has(self.goal) || !has(self.min) || self.goal == 'maximize'",
                "min bounds a higher-is-better metric: goal must be maximize",
                field_path=".goal",
            ),
        )
    )

    name: MetricName = Field(description="name: the guard's name, unique among the metrics.")
    max: float | None = Field(
        default=None, description="max: the candidate must stay at or below this (lower is better)."
    )
    min: float | None = Field(
        default=None, description="min: the candidate must stay at or above this (higher is better)."
    )
    margin: float | None = Field(
        default=None,
        ge=0,
        lt=1,
        description="margin: tolerated relative degradation against the control (0.1 = 10% worse).",
    )
    rollback_factor: float = Field(
        default=2.0,
        gt=1,
        le=100,
        description="rollbackFactor: roll back when the candidate is beyond this many times the limit or "
        "the control in the last interval (seed 004: error rate above 2x the threshold, latency above "
        "2x the control).",
    )
    goal: Literal["maximize", "minimize"] | None = Field(
        default=None,
        description="goal: the guarded metric's direction; implied by max (minimize), min (maximize) "
        "and builtin.",
    )


# --- strategy ----------------------------------------------------------------------------------


class Step(ApiModel):
    weight: int = Field(ge=1, le=100, description="weight: percent of traffic to the candidate, 1 to 100.")
    pause: Annotated[Duration, at_least("1m", "a step shorter than the analysis gathers no samples")] = Field(
        default="1h", description="pause: how long to hold before the next step, at least 1m."
    )


class Bandit(ApiModel):
    algorithm: Literal["thompson", "ucb1", "epsilon-greedy"] = Field(
        default="thompson", description="algorithm: thompson, ucb1 or epsilon-greedy."
    )
    epsilon: float = Field(
        default=0.1, ge=0, le=1, description="epsilon: epsilon-greedy's share of uniform exploration."
    )
    floor: int = Field(
        default=5,
        ge=0,
        le=50,
        description="floor: every variant keeps at least this percent (the exploration floor), and a "
        "variant whose guards have not passed gets no more.",
    )
    min_change: int = Field(
        default=2,
        ge=0,
        le=100,
        description="minChange: weight changes smaller than this many points are not applied.",
    )


def _steps_increase(limit: int = MAX_STEPS) -> str:
    """CEL: each step's weight above the previous one (CEL has no index loop: unrolled)."""
    return " && ".join(
        f"(size(self.steps) <= {i + 1} || self.steps[{i}].weight < self.steps[{i + 1}].weight)"
        for i in range(limit - 1)
    )


class Strategy(ApiModel):
    model_config = ConfigDict(
        json_schema_extra=field_rules(
            cel(
                _steps_increase(),
                "each step must give the candidate more than the one before",
                field_path=".steps",
            )
        )
    )

    type: Literal["fixed", "bandit", "progressive"] = Field(
        default="fixed",
        description="type: fixed weights, a bandit that shifts traffic to the better variant, or "
        "progressive steps.",
    )
    steps: list[Step] = Field(
        default_factory=list,
        max_length=MAX_STEPS,
        description="steps: the candidate's weight per progressive step, increasing; empty: seed 004's "
        "10% -> 50% -> 100%, an hour each.",
    )
    bandit: Bandit = Field(default_factory=Bandit, description="bandit: settings of the bandit strategy.")


class NoData(ApiModel):
    action: Literal["hold", "fail"] = Field(
        default="hold",
        description="action: when an interval brings no new samples of the primary metric: hold (keep "
        "the weights and wait) or fail the experiment after maxIntervals in a row (all traffic to "
        "the control when autoRollback is on).",
    )
    max_intervals: int = Field(
        default=6, ge=1, le=1000, description="maxIntervals: intervals without data before failing."
    )


class PrometheusConnection(ApiModel):
    url: HttpUrl = Field(
        default="http://prometheus-operated.monitoring.svc:9090",
        description="url: the Prometheus HTTP API base URL that scrapes the service's pods.",
    )
    bearer_token_secret: SecretKeyRef | None = Field(
        default=None, description="bearerTokenSecret: a token for a Prometheus behind authentication."
    )
    selector: Annotated[list[LabelMatcher], Field(max_length=16)] = Field(
        default_factory=list,
        description="selector: label matchers added to every query to select this service's series, "
        "e.g. `{label: service, value: photo-classifier}`. A `namespace=\"<the experiment's "
        'namespace>"` matcher is added unless one on namespace is given (`value: ""` matches series '
        "without the label).",
    )


# --- spec --------------------------------------------------------------------------------------


class Variant(ApiModel):
    name: str = Field(
        pattern=NAME,
        max_length=63,
        description="name: the variant's name (e.g. control, candidate); the `variant` label value.",
    )
    model_version: str = Field(
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        max_length=253,
        description="modelVersion: the ModelVersion it serves (Ready, with an ONNX artifact).",
    )
    weight: int = Field(
        ge=0, le=100, description="weight: percent of traffic at the start; weights sum to 100."
    )


class ABExperimentSpec(ApiModel):
    """spec: the service, the variants, the metrics and how to decide."""

    service: str = Field(
        pattern=NAME, max_length=63, description="service: the ClassifierService under test (same namespace)."
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
        description="stickinessKey: request header hashed (consistent hashing) so a client stays on one "
        "variant; requests without it are hashed by client address.",
    )
    primary_metric: Metric = Field(description="primaryMetric: decides the winner.")
    guard_metrics: Annotated[list[Guard], keyed_by("name")] = Field(
        default_factory=list,
        max_length=8,
        description="guardMetrics: a candidate must not break these (non-inferiority to pass a step; "
        "a breach rolls back); one per name.",
    )
    min_samples: int = Field(
        default=1000,
        ge=10,
        le=1_000_000_000,
        description="minSamples: per variant of the primary metric before a winner can be declared.",
    )
    confidence: float = Field(
        default=0.95, gt=0.5, lt=1, description="confidence: 1 - the significance level (alpha), above 0.5."
    )
    power: float = Field(
        default=0.8,
        gt=0.5,
        lt=1,
        description="power: of the required-samples estimate for minimumDetectableEffect.",
    )
    strategy: Strategy = Field(default_factory=Strategy, description="strategy: how traffic moves over time.")
    analysis_interval: Annotated[
        Duration, at_least("30s", "Prometheus has no new samples to analyse more often than it scrapes")
    ] = Field(default="5m", description="analysisInterval: how often to analyse, at least 30s.")
    cooldown: Annotated[Duration, at_least("0s", "a negative cooldown is meaningless")] = Field(
        default="0s",
        description="cooldown: minimum time between two weight changes (rollbacks excepted), against "
        "flapping.",
    )
    no_data: NoData = Field(default_factory=NoData, description="noData: what an interval without data does.")
    auto_promote: bool = Field(
        default=False,
        description="autoPromote: route all traffic to a significant winner (the ModelVersion stage "
        "and the service's model stay a spec change: see status.promotion).",
    )
    auto_rollback: bool = Field(
        default=True, description="autoRollback: route all traffic to the control when a guard breaks."
    )
    suspend: bool = Field(default=False, description="suspend: freeze weights and analysis.")
    prometheus: PrometheusConnection = Field(
        default_factory=PrometheusConnection, description="prometheus: where the counters are read."
    )


AB_EXPERIMENT_RULES = (
    cel(
        "self.variants.map(v, v.weight).sum() == 100",
        "variants' weights must sum to 100",
        field_path=".variants",
    ),
    cel(
        "self.strategy.type != 'progressive' || size(self.variants) == 2",
        "a progressive strategy moves traffic from one control to one candidate: give 2 variants, or "
        "use the fixed or bandit strategy",
        field_path=".variants",
    ),
    cel(
        "self.strategy.type == 'progressive' || (self.variants[0].weight > 0 && "
        "self.variants.exists(v, v.name != self.variants[0].name && v.weight > 0))",
        "the control (the first variant) and at least one candidate need a weight above 0, or nothing "
        "can be compared",
        field_path=".variants",
    ),
    cel(
        "self.strategy.type != 'bandit' || self.strategy.bandit.floor * size(self.variants) <= 100",
        "the exploration floor times the number of variants exceeds 100%: lower strategy.bandit.floor",
        field_path=".strategy.bandit.floor",
    ),
    cel(
        "!self.guardMetrics.exists(g, g.name == self.primaryMetric.name)",
        "a guard may not share the primary metric's name (names key the status)",
        field_path=".guardMetrics",
    ),
)


# --- status ------------------------------------------------------------------------------------


class VariantStatus(ApiModel):
    name: str = Field(description="name: the variant.")
    model_version: str | None = Field(default=None, description="modelVersion: the ModelVersion it serves.")
    weight: int = Field(ge=0, le=100, description="weight: the effective traffic percent now.")
    samples: float = Field(default=0, ge=0, description="samples: n of the primary metric so far.")
    requests: float | None = Field(default=None, ge=0, description="requests: classify requests routed.")
    mean: float | None = Field(default=None, description="mean: of the primary metric.")
    ci_low: float | None = Field(default=None, description="ciLow: of the mean's confidence interval.")
    ci_high: float | None = Field(default=None, description="ciHigh: of the mean's confidence interval.")


class ComparisonStatus(ApiModel):
    metric: str = Field(description="metric: the deciding metric.")
    candidate: str = Field(description="candidate: compared with the control.")
    difference: float | None = Field(default=None, description="difference: candidate - control.")
    cs_low: float | None = Field(
        default=None, description="csLow: the always-valid confidence sequence's lower bound."
    )
    cs_high: float | None = Field(default=None, description="csHigh: its upper bound.")
    p_value: float | None = Field(
        default=None, ge=0, le=1, description="pValue: always-valid (mSPRT) p-value, valid at every look."
    )
    adjusted_p_value: float | None = Field(
        default=None, ge=0, le=1, description="adjustedPValue: Holm-corrected over every comparison."
    )
    test: str | None = Field(
        default=None, description="test: the single-look test (welch-t, two-proportion-z)."
    )
    fixed_p_value: float | None = Field(
        default=None, ge=0, le=1, description="fixedPValue: that test's p-value (valid at one look only)."
    )
    effect_size: float | None = Field(default=None, description="effectSize: Cohen's d (means) or h (rates).")
    verdict: str = Field(
        default="inconclusive", description="verdict: the sequential decision: better, worse, inconclusive."
    )


class GuardStatus(ApiModel):
    guard: str = Field(description="guard: the guard metric.")
    variant: str = Field(description="variant: the candidate it was tested on.")
    status: str = Field(description="status: pass, breach, inconclusive or no-data.")
    samples: float = Field(default=0, ge=0, description="samples: in the current step's window.")
    value: float | None = Field(default=None, description="value: the candidate's value in that window.")
    control_value: float | None = Field(default=None, description="controlValue: the control's.")
    p_pass: float | None = Field(default=None, ge=0, le=1, description="pPass: non-inferiority p (Holm).")
    p_breach: float | None = Field(default=None, ge=0, le=1, description="pBreach: the rollback rule's p.")


class SampleSizeStatus(ApiModel):
    metric: str = Field(description="metric: the primary metric.")
    fixed_horizon: dict[str, float] = Field(
        default_factory=dict, description="fixedHorizon: samples per variant a single-look test needs."
    )
    sequential: dict[str, float] = Field(
        default_factory=dict,
        description="sequential: samples per variant the sequential test needs (on average) for "
        "minimumDetectableEffect at the stated power.",
    )
    current: dict[str, float] = Field(default_factory=dict, description="current: samples per variant now.")
    eta: str | None = Field(default=None, description="eta: when they will be there at the current traffic.")
    eta_seconds: float | None = Field(default=None, ge=0, description="etaSeconds: seconds until then.")


class SrmStatus(ApiModel):
    p_value: float = Field(ge=0, le=1, description="pValue: of the chi-square test of the split.")
    mismatch: bool = Field(description="mismatch: the split differs from the weights (decisions hold).")
    observed: dict[str, float] = Field(default_factory=dict, description="observed: requests per variant.")
    expected: dict[str, float] = Field(default_factory=dict, description="expected: by the weights.")


class DecisionRecord(ApiModel):
    time: str = Field(description="time: when it was decided (RFC 3339).")
    action: str = Field(description="action: Hold, StepForward, Reweight, Promote, Rollback, NoData, Fail.")
    reason: str = Field(description="reason: a CamelCase word.")
    message: str = Field(default="", description="message: why, with the numbers.")
    weights: dict[str, int] = Field(default_factory=dict, description="weights: after the decision.")
    samples: dict[str, float] = Field(default_factory=dict, description="samples: per variant.")
    p_value: dict[str, float] = Field(
        default_factory=dict, description="pValue: Holm-adjusted always-valid p per candidate."
    )
    effect: dict[str, float] = Field(
        default_factory=dict, description="effect: candidate - control on the primary metric."
    )


class PromotionChange(ApiModel):
    kind: str = Field(description="kind: the resource to change.")
    name: str = Field(description="name: its name.")
    patch: str = Field(description="patch: the JSON merge patch of its spec to commit.")


class Promotion(ApiModel):
    winner: str = Field(description="winner: the variant to make permanent.")
    model_version: str = Field(description="modelVersion: its ModelVersion.")
    changes: list[PromotionChange] = Field(
        default_factory=list, description="changes: the spec changes to commit (in Git, or with the command)."
    )
    command: str = Field(description="command: `foresight ab promote` that prints or applies them.")


class ABExperimentStatus(StatusBase):
    phase: ExperimentPhase | None = Field(
        default=None, description="phase: a one-word summary for `kubectl get`."
    )
    weights: str | None = Field(
        default=None, description="weights: the effective split as text (`control=90,candidate=10`)."
    )
    samples: int | None = Field(
        default=None, ge=0, description="samples: of the primary metric, all variants together."
    )
    variants: list[VariantStatus] = Field(default_factory=list, description="variants: per-variant results.")
    p_value: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="pValue: the smallest Holm-corrected always-valid p-value of the primary metric.",
    )
    effect_size: float | None = Field(
        default=None, description="effectSize: Cohen's d (or h) of the candidate behind pValue."
    )
    winner: str | None = Field(default=None, description="winner: the significant winner.")
    current_step: int = Field(default=0, ge=0, description="currentStep: progressive step index (0-based).")
    decision: DecisionRecord | None = Field(default=None, description="decision: the latest decision.")
    comparisons: list[ComparisonStatus] = Field(
        default_factory=list, description="comparisons: every candidate against the control."
    )
    guards: list[GuardStatus] = Field(default_factory=list, description="guards: guard results.")
    sample_size: SampleSizeStatus | None = Field(
        default=None, description="sampleSize: required samples and ETA."
    )
    srm: SrmStatus | None = Field(
        default=None, description="srm: the sample-ratio-mismatch check (absent while a new split settles)."
    )
    decisions: list[DecisionRecord] = Field(
        default_factory=list,
        max_length=MAX_DECISIONS,
        description=f"decisions: the newest {MAX_DECISIONS} decisions that changed something, oldest first.",
    )
    decision_counts: dict[str, int] = Field(
        default_factory=dict, description="decisionCounts: decisions taken, by action, since the start."
    )
    promotion: Promotion | None = Field(
        default=None, description="promotion: what to commit to make the winner permanent."
    )
    last_analysis_time: str | None = Field(default=None, description="lastAnalysisTime: RFC 3339.")
    next_analysis_time: str | None = Field(default=None, description="nextAnalysisTime: RFC 3339.")
    analysis_state: dict[str, Any] | None = Field(
        default=None,
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
        description="analysisState: the analysis's memory (sequential tests, bandit, snapshots), restored "
        "after an operator restart; written by the operator only.",
    )


AB_EXPERIMENT = KindInfo(
    kind="ABExperiment",
    plural="abexperiments",
    short_names=("ab",),
    printer_columns=ready_columns(
        column("Service", ".spec.service"),
        column("Weights", ".status.weights"),
        column("Winner", ".status.winner"),
        column("Samples", ".status.samples", "integer"),
        column("P-Value", ".status.pValue", "number", priority=1),
    ),
    spec_model=ABExperimentSpec,
    status_model=ABExperimentStatus,
    description="ABExperiment splits traffic between model versions, analyses the primary and guard "
    "metrics from Prometheus and promotes or rolls back.",
    spec_validations=AB_EXPERIMENT_RULES,
)


def source_kind(source: MetricSource) -> Literal["proportion", "mean"]:
    """Whether a metric is a rate (successes / trials) or a mean."""
    if source.rate is not None or source.builtin in ("accuracy", "errorRate"):
        return "proportion"
    return "mean"
