"""When a ForecastTask runs next: pure functions of its schedule, its past runs and a clock.

No I/O and no kopf: the handler turns the task's Jobs into :class:`PastRun` records, calls
:func:`plan_runs` with ``now`` and starts what the :class:`Plan` says. Tests give a fake clock.

The rules:

- **One run at a time.** While a run is under way nothing else starts.
- **A new or changed spec trains now** (``metadata.generation`` differs from the newest run's):
  the first run of a task, and the first run after a fix, do not wait for a slot.
- **Slots are anchored on the last run**, so they survive restarts: the next retrain is the last
  train slot + ``retrainEvery``; the next prediction is the last run's slot + ``predictEvery`` (a
  train run also predicts), or the next ``cron`` time after it (cron replaces ``predictEvery``;
  UTC). A slot is the scheduled time, not the start or end time, and it is stored in the Job,
  whose name is derived from it: a restarted operator computes the same slot and finds the Job.
- **Catch-up** after downtime: a slot older than ``late_after`` is *missed*. Of the missed
  predictions, the newest ``maxCatchUp`` are run, oldest first, one after another; the rest are
  skipped. A missed retrain is made up once (training twice on the same data gains nothing),
  unless ``maxCatchUp`` is 0, which skips every missed run and waits for the next slot.
- **Failures**: a temporary one (Prometheus or Pushgateway unreachable) is retried, same slot,
  after an exponential backoff on the number of failures in a row; a permanent one (bad query, no
  series, too little history, too many series) blocks the task until its spec changes; any other
  failure waits for the next slot.
- ``suspend`` starts nothing (a run under way finishes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Literal

from foresight.api.durations import parse_duration
from foresight.api.forecasttask import ForecastTaskSpec

__all__ = [
    "Backoff",
    "Cadence",
    "Outcome",
    "PastRun",
    "Plan",
    "PlannedRun",
    "RunKind",
    "plan_runs",
]

RunKind = Literal["train", "predict"]
MAX_SLOTS = 10_000
"""Slots enumerated at most when counting missed runs (a 1 s cron after a year down stops here)."""


class Outcome(StrEnum):
    """How a run ended, as far as scheduling cares."""

    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    """Failed for another reason: counted, and the schedule moves on to the next slot."""
    RETRY = "Retry"
    """A temporary failure: the same slot is retried after a backoff."""
    BLOCKED = "Blocked"
    """Bad input: nothing runs until the spec changes."""


@dataclass(frozen=True)
class Cadence:
    """A task's schedule, in the units the planner needs."""

    retrain_every: timedelta
    predict_every: timedelta
    cron: str | None = None
    max_catch_up: int = 1
    suspend: bool = False

    def __post_init__(self) -> None:
        if self.retrain_every <= timedelta(0) or self.predict_every <= timedelta(0):
            raise ValueError("retrainEvery and predictEvery must be longer than 0s")
        if self.cron is not None:
            from croniter import croniter

            if not croniter.is_valid(self.cron):
                raise ValueError(f"schedule.cron {self.cron!r} is not a valid cron expression")

    @classmethod
    def from_spec(cls, spec: ForecastTaskSpec) -> Cadence:
        """Raises ``ValueError`` naming the field when a duration or the cron expression is unusable."""
        s = spec.schedule
        return cls(
            retrain_every=parse_duration(s.retrain_every),
            predict_every=parse_duration(s.predict_every),
            cron=s.cron,
            max_catch_up=s.max_catch_up,
            suspend=spec.suspend,
        )

    def next_predict(self, anchor: datetime) -> datetime:
        """The first prediction slot strictly after ``anchor`` (a slot or a run's scheduled time)."""
        if self.cron is None:
            return anchor + self.predict_every
        from croniter import croniter

        nxt = croniter(self.cron, anchor.astimezone(UTC)).get_next(datetime)
        assert isinstance(nxt, datetime)
        return nxt.astimezone(UTC)

    def predict_slots(self, anchor: datetime, until: datetime) -> list[datetime]:
        """Prediction slots in ``(anchor, until]``, oldest first (at most :data:`MAX_SLOTS`, newest kept)."""
        out: list[datetime] = []
        if self.cron is None:
            # Arithmetic, not a loop: a 10 s interval after a month down is 260k slots.
            n = int((until - anchor) / self.predict_every)
            first = max(1, n - MAX_SLOTS + 1)
            return [anchor + k * self.predict_every for k in range(first, n + 1)]
        slot = self.next_predict(anchor)
        while slot <= until:
            out.append(slot)
            if len(out) > MAX_SLOTS:
                out.pop(0)
            slot = self.next_predict(slot)
        return out

    def next_predict_after(self, anchor: datetime, t: datetime) -> datetime:
        """The first prediction slot of the series anchored at ``anchor`` strictly after ``t``."""
        if self.cron is None:
            if t < anchor:
                return anchor + self.predict_every
            n = int((t - anchor) / self.predict_every) + 1
            return anchor + n * self.predict_every
        return self.next_predict(max(anchor, t))


@dataclass(frozen=True)
class Backoff:
    """Delay before retrying a temporary failure: ``base * factor**(failures-1)``, at most ``cap``."""

    base: timedelta = timedelta(seconds=10)
    factor: float = 2.0
    cap: timedelta = timedelta(minutes=10)

    def delay(self, failures: int) -> timedelta:
        n = max(1, failures)
        seconds = self.base.total_seconds() * self.factor ** min(n - 1, 60)
        return min(self.cap, timedelta(seconds=seconds))


@dataclass(frozen=True)
class PastRun:
    """A run that was started (from its Job): what, for which slot, and how it ended."""

    kind: RunKind
    scheduled: datetime
    attempt: int
    generation: int | None
    outcome: Outcome
    finished: datetime | None = None


@dataclass(frozen=True)
class PlannedRun:
    """A run to start now."""

    kind: RunKind
    scheduled: datetime
    attempt: int = 1
    why: str = "schedule"
    """``first run``, ``spec changed``, ``schedule``, ``catch-up``, ``retry``."""


@dataclass(frozen=True)
class Plan:
    """What to do now."""

    start: PlannedRun | None
    """Start this run now (``None``: nothing to start)."""
    next_time: datetime | None
    """When the next run is due (``status.nextRunTime``); ``None`` when none is scheduled
    (suspended, or blocked until the spec changes). May be in the past while a run is under way."""
    queued: int
    """Runs due now and not started yet, ``start`` included (the scheduled-runs queue)."""
    waiting: str | None = None
    """Why nothing starts: ``active``, ``suspended``, ``blocked``, ``backoff``; ``None`` otherwise."""


def _order(run: PastRun) -> tuple[datetime, int]:
    return (run.scheduled, run.attempt)


def _normal(
    cadence: Cadence, history: Sequence[PastRun], now: datetime, late_after: timedelta
) -> tuple[PlannedRun | None, datetime, int]:
    """``(run to start, next due time, runs due)`` on the regular schedule (no run under way)."""
    trains = [r.scheduled for r in history if r.kind == "train"]
    last_any = max(r.scheduled for r in history)
    skip_missed = cadence.max_catch_up == 0

    # Retraining: anchored on the last train slot; a missed retrain is made up once.
    next_train = (max(trains) + cadence.retrain_every) if trains else now
    if next_train <= now:
        last_train = max(trains) if trains else _second(now)
        periods = int((now - last_train) / cadence.retrain_every) if trains else 0
        slot = last_train + periods * cadence.retrain_every
        if skip_missed and now - slot > late_after:
            next_train = slot + cadence.retrain_every  # skipped: wait for the next slot
        else:
            # A train run predicts too: predictions due now are covered by it.
            return PlannedRun("train", slot, why="schedule" if periods <= 1 else "catch-up"), now, 1

    # Predicting: anchored on the newest run's slot (train runs predict as well).
    slots = cadence.predict_slots(last_any, now)
    on_time = [s for s in slots if now - s <= late_after]
    keep = on_time if skip_missed else slots[-cadence.max_catch_up :]
    if keep:
        why = "catch-up" if now - keep[0] > late_after else "schedule"
        return PlannedRun("predict", keep[0], why=why), now, len(keep)
    next_predict = cadence.next_predict_after(last_any, now)
    return None, min(next_train, next_predict), 0


def plan_runs(
    cadence: Cadence,
    history: Sequence[PastRun],
    *,
    generation: int | None,
    now: datetime,
    failures_in_a_row: int = 0,
    backoff: Backoff | None = None,
    late_after: timedelta = timedelta(minutes=1),
) -> Plan:
    """What to start now, and when the next run is due.

    Args:
        cadence: the task's schedule.
        history: its past runs (any order; only the newest few matter).
        generation: the task's current ``metadata.generation``.
        now: the time (timezone-aware).
        failures_in_a_row: failed runs since the last success (drives the backoff).
        backoff: retry delays of temporary failures.
        late_after: how late a slot may start and still count as on time rather than missed.
    """
    backoff = backoff or Backoff()
    runs = sorted(history, key=_order)
    active = [r for r in runs if r.outcome is Outcome.RUNNING]
    if active:
        # Nothing starts; the next time is computed as if the active run had already succeeded.
        done = [r if r.outcome is not Outcome.RUNNING else _as_done(r) for r in runs]
        newest = done[-1]
        if cadence.suspend or newest.generation != generation:
            return Plan(None, None if cadence.suspend else now, 0, "active")
        after, next_time, _ = _normal(cadence, done, now, late_after)
        return Plan(None, after.scheduled if after is not None else next_time, 0, "active")
    if cadence.suspend:
        return Plan(None, None, 0, "suspended")
    if not runs:
        return Plan(PlannedRun("train", _second(now), why="first run"), now, 1)
    newest = runs[-1]
    if newest.generation != generation:
        return Plan(PlannedRun("train", _second(now), why="spec changed"), now, 1)
    if newest.outcome is Outcome.BLOCKED:
        return Plan(None, None, 0, "blocked")
    if newest.outcome is Outcome.RETRY:
        at = (newest.finished or newest.scheduled) + backoff.delay(failures_in_a_row)
        if now < at:
            return Plan(None, at, 0, "backoff")
        retry = PlannedRun(newest.kind, newest.scheduled, newest.attempt + 1, why="retry")
        return Plan(retry, now, 1)
    start, next_time, queued = _normal(cadence, runs, now, late_after)
    return Plan(start, next_time, queued)


def _as_done(run: PastRun) -> PastRun:
    return PastRun(run.kind, run.scheduled, run.attempt, run.generation, Outcome.SUCCEEDED, run.finished)


def _second(t: datetime) -> datetime:
    # Job names carry the slot to the second.
    return t.astimezone(UTC).replace(microsecond=0)
