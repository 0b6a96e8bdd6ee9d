"""Reading a finished run back: how its Job ended and the result its pod left (pure).

A run's pod writes a :class:`~foresight.contract.forecast.ForecastRunResult` into its termination
message and exits with a code that says what kind of failure it was (the contract's ``EXIT_*``).
:func:`read_run_result` turns the Job and its pods into a :class:`Harvest`: the outcome the
scheduler acts on (succeeded, blocked until the spec changes, retry after a backoff, failed until
the next slot), the condition reason and message, and the result itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from foresight.api.forecasttask import ForecastReason
from foresight.contract.forecast import BAD_INPUT_REASONS, EXIT_BAD_INPUT, EXIT_TEMPORARY, ForecastRunResult

from ...builders.forecasttask import parse_annotations
from ...reconcile import JobState, job_state, parse_time, true_condition
from ...reconcile.pods import ended, terminated
from ...schedule import Outcome, RunKind

__all__ = ["LAST_WORDS", "OUTCOME_ANNOTATION", "Harvest", "outcome_of", "read_run_result"]

OUTCOME_ANNOTATION = "foresight.dev/outcome"
"""On a run Job: its outcome, once read (a Job without it has not been taken into status yet)."""
LAST_WORDS = 1500
"""Characters of a crashed pod's log tail quoted in the condition message."""


@dataclass(frozen=True)
class Harvest:
    """The result of one finished run, read from its Job and pod."""

    job: str
    kind: RunKind
    scheduled: datetime
    attempt: int
    outcome: Outcome
    reason: str
    message: str
    finished: datetime
    result: ForecastRunResult | None = None
    """The runtime's result (``None`` when the pod left none: it crashed, or never started)."""
    shards: dict[str, Any] | None = None
    """A sharded run's ``status.shards`` (:mod:`.shards`); ``None`` for a single-pod run."""

    @property
    def trained(self) -> bool:
        """Whether this run trained (and so may have saved a model to register)."""
        return self.outcome is Outcome.SUCCEEDED and self.result is not None and self.result.mode == "train"


def outcome_of(reason: str, result: ForecastRunResult | None, exit_code: Any) -> Outcome:
    """How a failed run (or shard) counts for the schedule, from its reason, result and exit code."""
    retryable = bool(result is not None and result.retryable)
    if reason in BAD_INPUT_REASONS or (exit_code == EXIT_BAD_INPUT and not retryable):
        return Outcome.BLOCKED
    if retryable or exit_code == EXIT_TEMPORARY:
        return Outcome.RETRY
    return Outcome.FAILED


def _failure(job: Mapping[str, Any], name: str, term: Mapping[str, Any], raw: str) -> tuple[str, str]:
    """Reason and message of a failed run whose pod left no result: the Job's and the pod's words."""
    failed: Mapping[str, Any] = true_condition(job, "Failed") or {}
    message = f"run {name} failed ({failed.get('reason') or 'no result'}: {failed.get('message') or ''})"
    if raw:
        message += f"; the pod's last words: {raw[-LAST_WORDS:]}"
    elif term.get("reason"):
        message += f"; container {term.get('reason')} (exit code {term.get('exitCode')})"
    return ForecastReason.RUN_FAILED, message


def read_run_result(
    job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]], *, kind: RunKind, now: datetime
) -> Harvest:
    """How a finished run Job ended (pure): outcome, reason and message, and the runtime's result."""
    meta = job.get("metadata") or {}
    parsed = parse_annotations(meta.get("annotations") or {})
    scheduled, attempt = (parsed[0], parsed[1]) if parsed else (now, 1)
    last = ended(pods)
    term: Mapping[str, Any] = (terminated(last[-1]) or {}) if last else {}
    raw = str(term.get("message") or "")
    result = ForecastRunResult.from_termination_message(raw)
    completed = (job.get("status") or {}).get("completionTime")
    finished = parse_time(term.get("finishedAt")) or parse_time(completed) or now
    name = str(meta.get("name"))
    if job_state(job) is JobState.SUCCEEDED:
        reason = (result.reason if result is not None else "") or ForecastReason.FORECASTS_WRITTEN
        message = (result.message if result is not None else "") or f"run {name} finished"
        return Harvest(name, kind, scheduled, attempt, Outcome.SUCCEEDED, reason, message, finished, result)
    if result is not None and result.reason:
        reason, message = result.reason, result.message
    else:
        reason, message = _failure(job, name, term, raw)
    outcome = outcome_of(reason, result, term.get("exitCode"))
    return Harvest(name, kind, scheduled, attempt, outcome, reason, message, finished, result)
