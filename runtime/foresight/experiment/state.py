"""What the analysis reads at each interval (:class:`Observation`) and remembers between intervals
(:class:`ExperimentState`).

The state is the experiment's memory across analyses and operator restarts; the operator stores
it in the ABExperiment's status (it is small JSON) and hands it back at the next analysis. It
holds the effective weights, the progressive step, the running sequential tests, the bandit, the
last two snapshots of the aggregates (for the last interval's window and the current step's
window) and the counters of the no-data policy.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from pydantic import Field

from ._base import Record
from .aggregates import Aggregate, Moments, Proportion, delta
from .bandits import BanditState, new_bandit_state
from .config import ExperimentConfig
from .sequential import SequentialState

__all__ = ["ExperimentState", "Observation", "initial_state"]


class Observation(Record):
    """The aggregates at one analysis, cumulative since the experiment started.

    ``metrics`` is keyed by metric or guard name, then variant (a variant without data is absent);
    ``traffic`` is the classify requests routed to each variant (for the ratio check).
    """

    metrics: dict[str, dict[str, Aggregate]] = Field(default_factory=dict)
    traffic: dict[str, float] = Field(default_factory=dict)

    def of(self, metric: str) -> dict[str, Proportion | Moments]:
        return dict(self.metrics.get(metric, {}))

    def since(self, before: Observation | None) -> Observation:
        """The window between ``before`` and this observation (all of it when ``before`` is None)."""
        if before is None:
            return self
        metrics = {
            name: {v: delta(agg, before.metrics.get(name, {}).get(v)) for v, agg in per_variant.items()}
            for name, per_variant in self.metrics.items()
        }
        traffic = {v: max(0.0, n - before.traffic.get(v, 0.0)) for v, n in self.traffic.items()}
        return Observation(metrics=metrics, traffic=traffic)


class ExperimentState(Record):
    started_at: datetime
    weights: dict[str, int]  # the effective weights (what the router uses now)
    step: int = 0  # progressive: index into the steps
    step_started_at: datetime
    last_change_at: datetime | None = None  # last weight change (the cooldown counts from it)
    last_analysis_at: datetime | None = None
    no_data_intervals: int = 0  # consecutive analyses without new samples of the primary metric
    winner: str | None = None
    finished_action: str | None = None  # Promote / Rollback / Fail once the experiment is over
    finished_reason: str | None = None
    finished_at: datetime | None = None
    sequential: dict[str, SequentialState] = Field(default_factory=dict)  # by "metric/candidate"
    bandit: BanditState | None = None
    last: Observation | None = None  # the aggregates at the previous analysis
    step_start: Observation | None = None  # the aggregates when the current weights began
    # The traffic when the current split began ({}: zero, at the start); None: settling after a change.
    srm_baseline: dict[str, float] | None = Field(default_factory=dict)


def _seed(name: str) -> int:
    """A 31-bit seed from the experiment's name (the status is JSON read by Go: stay in int32)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=4).digest(), "big") & 0x7FFFFFFF


def initial_state(config: ExperimentConfig, now: datetime) -> ExperimentState:
    """The state before the first analysis: the declared weights (or the first progressive step)."""
    if config.strategy.type == "progressive":
        first = config.steps[0].weight
        weights = {config.control: 100 - first, config.candidates[0]: first}
    else:
        weights = {v.name: v.weight for v in config.variants}
    bandit = None
    if config.strategy.type == "bandit":
        bandit = new_bandit_state(
            [v.name for v in config.variants],
            config.strategy.bandit.algorithm,
            "bernoulli" if config.primary.kind == "proportion" else "gaussian",
            seed=_seed(config.name),
        )
    return ExperimentState(started_at=now, weights=weights, step_started_at=now, bandit=bandit)
