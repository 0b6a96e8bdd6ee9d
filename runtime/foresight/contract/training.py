"""A TrainingJob run: the result its pod leaves, the exit codes a retry cannot fix, its gauges' job.

``foresight train --config FILE`` ends every run with a :class:`TrainingResult` in its termination
message: the metrics, epochs and artifact of a success (plus the trials of a search), or the
``reason`` and ``message`` of a failure. In a DDP job only rank 0's message names the artifact.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic.alias_generators import to_camel

from .termination import Doc, ResultMessage, Shrink, cut_message, keep_only

__all__ = ["NON_RETRYABLE_EXIT_CODES", "PUSHGATEWAY_JOB", "TrainingResult", "TrialResult"]

NON_RETRYABLE_EXIT_CODES = (2, 3, 4, 5, 7, 8, 10)
"""Exit codes of ``foresight train`` for failures a retry cannot fix (invalid config, dataset not
found, NaN loss, checkpoint from another model, bad S3 credentials, PromQL error, data quality
under the spec's thresholds; see ``foresight.training.errors``, which a unit test keeps in step).
A DDP Job fails at once on them."""

PUSHGATEWAY_JOB = "foresight-training"
"""The ``job`` of the per-epoch gauges a TrainingJob with ``metrics.pushgatewayUrl`` pushes."""


class TrialResult(BaseModel):
    """One trial of a hyperparameter search."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    id: str = ""
    config: dict[str, Any] = {}
    metric: float | None = None
    """The search metric's last value (``None``: never reported)."""
    status: str = ""
    """Ray Tune's: ``TERMINATED`` (finished), ``STOPPED`` (stopped early by ASHA), ``ERROR``."""
    epochs: int | None = None
    error: str | None = None


class TrainingResult(ResultMessage):
    """What one training run (or search) produced, or why it failed."""

    reason: str | None = None
    """``Succeeded``, or a :class:`~foresight.api.trainingjob.TrainingReason` / ``TrainingFailed``
    (always written by the runtime)."""
    message: str | None = None
    retryable: bool | None = None
    epochs: int | None = None
    metrics: dict[str, float] | None = None
    """The last epoch's metrics by name (numbers only: anything else a reader drops)."""
    fingerprint: str | None = None
    state_sha256: str | None = None
    resumed_from_epoch: int | None = None
    artifact_uri: str | None = None
    sha256: str | None = None
    """The main model file's checksum."""
    manifest_sha256: str | None = None
    """The checksum of the model directory's manifest (covers every file)."""
    files: dict[str, str] | None = None
    rank: int | None = None
    world_size: int | None = None
    data_quality: dict[str, Any] | None = None
    """The dataset quality report (the API's ``DataQuality``), on success and on DataQualityFailed."""
    # A search (spec.search): its trials, the best one, and the refit of the best config.
    metric: str | None = None
    """The search metric's name."""
    mode: str | None = None
    best_trial: TrialResult | None = None
    best_config: dict[str, Any] | None = None
    best_metric: float | None = None
    trials: list[TrialResult] | None = None
    trial_count: int | None = None
    """Set instead of ``trials`` when they did not fit into the message."""
    search_uri: str | None = None

    @field_validator("metrics", mode="before")
    @classmethod
    def _numbers_only(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {k: v for k, v in value.items() if isinstance(v, int | float) and not isinstance(v, bool)}

    @classmethod
    def shrink_steps(cls) -> Sequence[Shrink]:
        return (_count_trials, cut_message(1000), keep_only(("reason", "message", "artifactUri", "sha256")))


def _count_trials(doc: Doc) -> Doc | None:
    if "trials" not in doc:
        return None
    out = dict(doc)
    out["trialCount"] = len(out.pop("trials"))
    return out
