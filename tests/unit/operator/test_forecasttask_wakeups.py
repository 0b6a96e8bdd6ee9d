"""One thread wakes every ForecastTask when it is due (instead of a kopf timer per task).

:class:`Wakeups` reconciles a task at the time it was last told, once, earliest first; a newer time
replaces the older; forgotten tasks are not woken; a reconcile that asks for a retry is woken
again after that delay. The controller's :meth:`next_wake` says when: the next run (not sooner
than ``min_wait``), or a safety-net recheck while a run is under way.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from foresight_operator.handlers.forecasttask.controller import ForecastTaskController
from foresight_operator.handlers.forecasttask.gauges import ForecastTaskMetrics
from foresight_operator.handlers.forecasttask.wakeups import Wakeups
from prometheus_client import CollectorRegistry

from tests.cluster.emulator import Cluster
from tests.polling import wait_for
from tests.unit.operator.conftest import Events, handler_context

T0 = datetime(2026, 3, 1, 6, 15, tzinfo=UTC)


class Recorder:
    def __init__(self, retry: dict[tuple[str, str], float] | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.retry = dict(retry or {})
        self.lock = threading.Lock()

    def __call__(self, namespace: str, name: str) -> float | None:
        with self.lock:
            self.calls.append((namespace, name))
        return self.retry.pop((namespace, name), None)


def test_tasks_are_woken_once_when_due_earliest_first_and_rescheduling_replaces() -> None:
    rec = Recorder()
    wake = Wakeups(rec)
    now = time.time()
    wake.at("sre", "late", now + 0.6)
    wake.at("sre", "soon", now + 0.2)
    wake.at("sre", "moved", now + 0.1)
    wake.at("sre", "moved", now + 0.4)  # replaces the earlier time
    wake.at("sre", "gone", now + 0.3)
    wake.forget("sre", "gone")
    wake.at("sre", "never", None)
    wake.start()
    try:
        wait_for(lambda: len(rec.calls) >= 3, "three wakes", timeout=10)
        time.sleep(0.5)
    finally:
        wake.stop()
    assert rec.calls == [("sre", "soon"), ("sre", "moved"), ("sre", "late")]
    assert len(wake) == 0


def test_a_reconcile_that_asks_for_a_retry_is_woken_again() -> None:
    rec = Recorder(retry={("sre", "flaky"): 0.2})
    wake = Wakeups(rec)
    wake.at("sre", "flaky", time.time())
    wake.start()
    try:
        wait_for(lambda: len(rec.calls) >= 2, "the retry", timeout=10)
    finally:
        wake.stop()
    assert rec.calls[:2] == [("sre", "flaky"), ("sre", "flaky")]


def test_the_controller_wakes_a_task_at_its_next_run_or_rechecks_a_run_under_way(
    cluster: Cluster, events: Events
) -> None:
    ctl = ForecastTaskController(
        handler_context(cluster, events, T0), ForecastTaskMetrics(CollectorRegistry())
    )
    next_run = "2026-03-01T06:30:00Z"
    assert ctl.next_wake(T0, {"nextRunTime": next_run}) == datetime(2026, 3, 1, 6, 30, tzinfo=UTC)
    assert ctl.next_wake(T0, {"nextRunTime": "2026-03-01T06:00:00Z"}) == T0 + ctl.min_wait  # overdue
    assert ctl.next_wake(T0, {"nextRunTime": next_run, "activeRun": "job"}) == T0 + ctl.active_recheck
    assert ctl.next_wake(T0, {}) is None
    assert ctl.active_recheck > timedelta(seconds=30)  # a run's end is an event, not a poll
