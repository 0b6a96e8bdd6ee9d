"""The ForecastTask scheduler as pure functions with a fake clock: slots, catch-up, failures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from foresight.api.forecasttask import ForecastTaskSpec
from foresight_operator.schedule import (
    Backoff,
    Cadence,
    Outcome,
    PastRun,
    PlannedRun,
    plan_runs,
)

T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)
CADENCE = Cadence(retrain_every=24 * HOUR, predict_every=15 * MIN)


def run(
    kind: str, at: datetime, outcome: Outcome = Outcome.SUCCEEDED, *, gen: int = 1, attempt: int = 1
) -> PastRun:
    return PastRun(kind, at, attempt, gen, outcome, finished=at + MIN)  # type: ignore[arg-type]


def test_cadence_from_spec_and_bad_cron() -> None:
    spec = ForecastTaskSpec.model_validate(
        {
            "source": {"query": "up"},
            "schedule": {"retrainEvery": "12h", "predictEvery": "5m", "maxCatchUp": 3},
        }
    )
    c = Cadence.from_spec(spec)
    assert (c.retrain_every, c.predict_every, c.max_catch_up, c.cron) == (12 * HOUR, 5 * MIN, 3, None)
    with pytest.raises(ValueError, match="not a valid cron"):
        Cadence(retrain_every=HOUR, predict_every=MIN, cron="61 * * * *")


def test_first_run_trains_now() -> None:
    plan = plan_runs(CADENCE, [], generation=1, now=T0 + timedelta(seconds=7, microseconds=5))
    assert plan.start == PlannedRun("train", T0 + timedelta(seconds=7), why="first run")
    assert plan.queued == 1


def test_predictions_follow_the_interval_anchored_on_the_last_run() -> None:
    history = [run("train", T0)]
    plan = plan_runs(CADENCE, history, generation=1, now=T0 + 10 * MIN)
    assert plan.start is None and plan.next_time == T0 + 15 * MIN and plan.queued == 0
    plan = plan_runs(CADENCE, history, generation=1, now=T0 + 15 * MIN + timedelta(seconds=3))
    assert plan.start == PlannedRun("predict", T0 + 15 * MIN)
    # The same inputs give the same slot: a restarted operator makes the same Job, not another.
    again = plan_runs(CADENCE, history, generation=1, now=T0 + 15 * MIN + timedelta(seconds=4))
    assert again.start == plan.start
    history.append(run("predict", T0 + 15 * MIN))
    plan = plan_runs(CADENCE, history, generation=1, now=T0 + 20 * MIN)
    assert plan.start is None and plan.next_time == T0 + 30 * MIN


def test_retrain_is_due_after_retrain_every_and_covers_the_prediction() -> None:
    history = [run("train", T0)] + [run("predict", T0 + k * 15 * MIN) for k in range(1, 96)]
    plan = plan_runs(CADENCE, history, generation=1, now=T0 + 24 * HOUR + timedelta(seconds=2))
    assert plan.start == PlannedRun("train", T0 + 24 * HOUR)
    assert plan.queued == 1


def test_never_two_runs_at_once() -> None:
    history = [run("train", T0), run("predict", T0 + 15 * MIN, Outcome.RUNNING)]
    plan = plan_runs(CADENCE, history, generation=1, now=T0 + 45 * MIN)
    assert plan.start is None and plan.waiting == "active"
    # The next slot is computed as if the active run had succeeded: 00:30 is missed by now, and
    # with maxCatchUp 1 the run after this one is the 00:45 slot.
    assert plan.next_time == T0 + 45 * MIN
    plan = plan_runs(CADENCE, history, generation=1, now=T0 + 20 * MIN)
    assert plan.start is None and plan.next_time == T0 + 30 * MIN


def test_catch_up_after_downtime_runs_at_most_max_catch_up_newest_slots() -> None:
    history = [run("train", T0)]
    now = T0 + 2 * HOUR + timedelta(seconds=30)  # slots 00:15 .. 02:00 were due: 8 of them
    one = plan_runs(CADENCE, history, generation=1, now=now)
    assert one.start == PlannedRun("predict", T0 + 2 * HOUR) and one.queued == 1

    three = Cadence(retrain_every=24 * HOUR, predict_every=15 * MIN, max_catch_up=3)
    plan = plan_runs(three, history, generation=1, now=now)
    assert plan.start == PlannedRun("predict", T0 + 90 * MIN, why="catch-up") and plan.queued == 3
    # After that run the next two follow, oldest first; then the schedule is back to normal.
    history.append(run("predict", T0 + 90 * MIN))
    plan = plan_runs(three, history, generation=1, now=now)
    assert plan.start is not None and plan.start.scheduled == T0 + 105 * MIN and plan.queued == 2
    history.append(run("predict", T0 + 105 * MIN))
    history.append(run("predict", T0 + 2 * HOUR))
    plan = plan_runs(three, history, generation=1, now=now)
    assert plan.start is None and plan.next_time == T0 + 2 * HOUR + 15 * MIN


def test_max_catch_up_zero_skips_missed_runs_but_runs_on_time_ones() -> None:
    zero = Cadence(retrain_every=24 * HOUR, predict_every=15 * MIN, max_catch_up=0)
    history = [run("train", T0)]
    late = plan_runs(zero, history, generation=1, now=T0 + 2 * HOUR + 5 * MIN)
    assert late.start is None and late.next_time == T0 + 2 * HOUR + 15 * MIN
    on_time = plan_runs(zero, history, generation=1, now=T0 + 15 * MIN + timedelta(seconds=20))
    assert on_time.start == PlannedRun("predict", T0 + 15 * MIN)
    missed_retrain = plan_runs(zero, history, generation=1, now=T0 + 30 * HOUR + 5 * MIN)
    assert missed_retrain.start is None and missed_retrain.next_time == T0 + 30 * HOUR + 15 * MIN


def test_a_missed_retrain_is_made_up_once_at_its_newest_slot() -> None:
    history = [run("train", T0)]
    plan = plan_runs(CADENCE, history, generation=1, now=T0 + 75 * HOUR)
    assert plan.start == PlannedRun("train", T0 + 72 * HOUR, why="catch-up") and plan.queued == 1


def test_cron_replaces_predict_every() -> None:
    cron = Cadence(retrain_every=24 * HOUR, predict_every=15 * MIN, cron="0 */6 * * *")
    history = [run("train", T0 + HOUR)]
    plan = plan_runs(cron, history, generation=1, now=T0 + 2 * HOUR)
    assert plan.start is None and plan.next_time == T0 + 6 * HOUR
    plan = plan_runs(cron, history, generation=1, now=T0 + 6 * HOUR + timedelta(seconds=5))
    assert plan.start == PlannedRun("predict", T0 + 6 * HOUR)
    three = Cadence(retrain_every=240 * HOUR, predict_every=MIN, cron="0 */6 * * *", max_catch_up=2)
    plan = plan_runs(three, history, generation=1, now=T0 + 19 * HOUR)
    assert plan.start == PlannedRun("predict", T0 + 12 * HOUR, why="catch-up") and plan.queued == 2


def test_spec_change_trains_now_even_after_a_permanent_failure() -> None:
    history = [run("train", T0, Outcome.BLOCKED)]
    blocked = plan_runs(CADENCE, history, generation=1, now=T0 + 5 * HOUR)
    assert blocked.start is None and blocked.next_time is None and blocked.waiting == "blocked"
    fixed = plan_runs(CADENCE, history, generation=2, now=T0 + 5 * HOUR)
    assert fixed.start == PlannedRun("train", T0 + 5 * HOUR, why="spec changed")


def test_temporary_failures_are_retried_with_exponential_backoff_then_recover() -> None:
    backoff = Backoff(base=timedelta(seconds=10), factor=2, cap=timedelta(seconds=60))
    assert [backoff.delay(n).total_seconds() for n in (1, 2, 3, 4, 5)] == [10, 20, 40, 60, 60]
    slot = T0 + 15 * MIN
    history = [run("train", T0), PastRun("predict", slot, 1, 1, Outcome.RETRY, finished=slot + MIN)]
    wait = plan_runs(CADENCE, history, generation=1, now=slot + MIN + timedelta(seconds=5), backoff=backoff,
                     failures_in_a_row=1)  # fmt: skip
    assert wait.start is None and wait.waiting == "backoff" and wait.next_time == slot + MIN + 10 * SEC
    retry = plan_runs(
        CADENCE, history, generation=1, now=slot + 2 * MIN, backoff=backoff, failures_in_a_row=1
    )
    assert retry.start == PlannedRun("predict", slot, attempt=2, why="retry")
    # The third failure in a row waits 40 s; then a success puts the schedule back on its slots.
    history.append(PastRun("predict", slot, 2, 1, Outcome.RETRY, finished=slot + 3 * MIN))
    history.append(PastRun("predict", slot, 3, 1, Outcome.RETRY, finished=slot + 4 * MIN))
    wait = plan_runs(CADENCE, history, generation=1, now=slot + 4 * MIN + 30 * SEC, backoff=backoff,
                     failures_in_a_row=3)  # fmt: skip
    assert wait.next_time == slot + 4 * MIN + 40 * SEC
    history.append(PastRun("predict", slot, 4, 1, Outcome.SUCCEEDED, finished=slot + 6 * MIN))
    back = plan_runs(CADENCE, history, generation=1, now=slot + 7 * MIN, backoff=backoff)
    assert back.start is None and back.next_time == T0 + 30 * MIN


def test_other_failures_wait_for_the_next_slot() -> None:
    history = [run("train", T0), run("predict", T0 + 15 * MIN, Outcome.FAILED)]
    plan = plan_runs(CADENCE, history, generation=1, now=T0 + 16 * MIN)
    assert plan.start is None and plan.next_time == T0 + 30 * MIN


def test_suspend_starts_nothing() -> None:
    suspended = Cadence(retrain_every=24 * HOUR, predict_every=15 * MIN, suspend=True)
    assert plan_runs(suspended, [], generation=1, now=T0).start is None
    plan = plan_runs(suspended, [run("train", T0)], generation=1, now=T0 + 5 * HOUR)
    assert plan.start is None and plan.next_time is None and plan.waiting == "suspended"


def test_a_fast_interval_after_a_long_outage_does_not_enumerate_forever() -> None:
    fast = Cadence(retrain_every=10000 * HOUR, predict_every=timedelta(seconds=1), max_catch_up=2)
    plan = plan_runs(fast, [run("train", T0)], generation=1, now=T0 + 24 * 30 * HOUR)
    assert plan.start is not None and plan.queued == 2
    assert plan.start.scheduled == T0 + 24 * 30 * HOUR - timedelta(seconds=1)


SEC = timedelta(seconds=1)
