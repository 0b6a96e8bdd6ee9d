"""The outcome of one analysis: the action, the weights after it, why, and the numbers behind it.

A :class:`Decision` is what the operator applies (weights into the serving config and
``status.variants[].weight``), records (an entry of ``status.decisions`` with the evidence, and a
Warning event for a rollback) and exports (the weights, samples and p-values as gauges). Its
``state`` is the experiment's memory for the next analysis.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from foresight.api.abexperiment import ExperimentReason

from ._base import Record
from .hypothesis import FixedHorizonTest
from .sequential import SequentialState
from .srm import SrmResult
from .state import ExperimentState

__all__ = [
    "Action",
    "ComparisonEvidence",
    "Decision",
    "Evidence",
    "GuardEvidence",
    "Phase",
    "Reason",
    "SampleSizeEvidence",
    "VariantEvidence",
]


class Action(StrEnum):
    HOLD = "Hold"  # keep the weights
    STEP_FORWARD = "StepForward"  # progressive: the next step's weights
    REWEIGHT = "Reweight"  # bandit: new weights
    PROMOTE = "Promote"  # the winner gets 100% (terminal)
    ROLLBACK = "Rollback"  # the control gets 100% (terminal)
    NO_DATA = "NoData"  # inconclusive: nothing new to analyse; weights kept
    FAIL = "Fail"  # terminal without a result


class Phase(StrEnum):
    """The experiment's one-word summary after the decision (``status.phase``)."""

    RUNNING = "Running"
    WINNER_FOUND = "WinnerFound"
    PROMOTED = "Promoted"
    ROLLED_BACK = "RolledBack"
    FAILED = "Failed"
    SUSPENDED = "Suspended"


Reason = ExperimentReason
"""The reasons a decision gives are the API's (``status.conditions[Ready].reason``): one list."""


class VariantEvidence(Record):
    """One variant on the primary metric (cumulative)."""

    name: str
    weight: int
    n: float
    mean: float | None
    ci_low: float | None
    ci_high: float | None


class ComparisonEvidence(Record):
    """A candidate against the control on one deciding metric (cumulative)."""

    metric: str
    candidate: str
    n_control: float
    n_candidate: float
    fixed: FixedHorizonTest | None  # the single-look test, for reference
    sequential: SequentialState | None  # what decides; None before minSamples
    adjusted_p_value: float | None  # Holm over every (metric, candidate) that decides
    verdict: Literal["better", "worse", "inconclusive"]


class GuardEvidence(Record):
    guard: str
    variant: str
    status: Literal["pass", "breach", "inconclusive", "no-data"]
    n: float  # candidate observations in the pass window
    value: float | None  # candidate mean in the pass window
    control_value: float | None
    p_pass: float | None  # Holm-adjusted p of non-inferiority (pass window)
    p_breach: float | None  # p of the rollback rule (last interval's window)


class SampleSizeEvidence(Record):
    """Samples the primary metric needs at the current split, and when they will be there."""

    metric: str
    fixed_horizon: dict[str, float]
    sequential: dict[str, float]
    current: dict[str, float]
    rate_per_second: dict[str, float]
    eta_seconds: float | None


class Evidence(Record):
    time: datetime
    primary: str
    variants: list[VariantEvidence]
    comparisons: list[ComparisonEvidence]
    guards: list[GuardEvidence]
    breaches: list[str]  # human-readable rollback triggers that fired
    sample_size: SampleSizeEvidence | None
    srm: SrmResult | None  # None while the split settles after a weight change
    bandit: dict[str, float] | None  # the bandit's allocation before floor and rounding
    no_data_intervals: int


class Decision(Record):
    action: Action
    reason: Reason
    message: str
    phase: Phase
    weights: dict[str, int]
    winner: str | None
    evidence: Evidence
    state: ExperimentState

    def history_entry(self) -> dict[str, object]:
        """A compact, JSON-ready entry for ``status.decisions``: the full evidence is several KB
        (keep the latest one whole in the status, not a hundred of them)."""
        primary = [c for c in self.evidence.comparisons if c.metric == self.evidence.primary]
        return {
            "time": self.evidence.time.isoformat().replace("+00:00", "Z"),
            "action": str(self.action),
            "reason": str(self.reason),
            "message": self.message,
            "weights": dict(self.weights),
            "samples": {v.name: v.n for v in self.evidence.variants},
            "pValue": {c.candidate: c.adjusted_p_value for c in primary if c.adjusted_p_value is not None},
            "effect": {c.candidate: c.sequential.estimate for c in primary if c.sequential is not None},
        }
