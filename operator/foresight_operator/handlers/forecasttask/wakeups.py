"""When each ForecastTask next needs a reconcile, and the one thread that does them.

A task's runs start at times its status states (``nextRunTime``); everything else that changes a
task arrives as an event (its spec, its run Jobs finishing, a shard done). So instead of a kopf
timer per task (an asyncio task per object waking every few seconds, each wake a handler call and
a log line: with thousands of tasks, the operator's steady load), the controller tells
:class:`Wakeups` when each task is next due after every reconcile, and a single thread sleeps until
the earliest and reconciles the tasks that are due. A task with a run under way is looked at again
after ``active_recheck`` (10 min) at the latest, in case its Job's events were lost; a run Job
deleted while the operator was down is found by the resume handler at its start.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

__all__ = ["Wakeups"]

log = logging.getLogger(__name__)

Key = tuple[str, str]
Reconcile = Callable[[str, str], float | None]
"""``(namespace, name) -> retry delay``: reconcile one task; a delay (seconds) asks to be woken again
then (a temporary failure), ``None`` leaves the next wake to the reconcile itself."""


class Wakeups:
    """A min-heap of (due time, task); :meth:`at` (re)schedules, a daemon thread wakes them."""

    def __init__(self, reconcile: Reconcile, *, clock: Callable[[], float] = time.time) -> None:
        self._reconcile = reconcile
        self._clock = clock
        self._due: dict[Key, float] = {}
        self._heap: list[tuple[float, Key]] = []
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def __len__(self) -> int:
        with self._cond:
            return len(self._due)

    def at(self, namespace: str, name: str, when: datetime | float | None) -> None:
        """Wake task ``namespace/name`` at ``when`` (replacing any earlier wake); ``None``: never."""
        key = (namespace, name)
        ts = when.timestamp() if isinstance(when, datetime) else when
        with self._cond:
            if ts is None:
                self._due.pop(key, None)
                return
            if self._due.get(key) == ts:
                return
            self._due[key] = ts
            heapq.heappush(self._heap, (ts, key))
            if self._heap[0][1] == key:
                self._cond.notify()

    def forget(self, namespace: str, name: str) -> None:
        self.at(namespace, name, None)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="forecasttask-wakeups", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _next_due(self) -> Key | None:
        """The next task due now, or ``None`` after waiting (until the earliest, or a change)."""
        with self._cond:
            while self._heap:
                ts, key = self._heap[0]
                if self._due.get(key) != ts:
                    heapq.heappop(self._heap)  # rescheduled or forgotten since
                    continue
                wait = ts - self._clock()
                if wait <= 0:
                    heapq.heappop(self._heap)
                    del self._due[key]
                    return key
                self._cond.wait(timeout=min(wait, 60.0))
                return None
            self._cond.wait(timeout=60.0)
            return None

    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
            key = self._next_due()
            if key is None:
                continue
            try:
                delay = self._reconcile(*key)
            except Exception:  # the thread must outlive any one task; retried a minute later
                log.exception("scheduled reconcile of ForecastTask %s/%s failed", *key)
                delay = 60.0
            if delay is not None:
                with self._cond:
                    if key not in self._due:  # the reconcile did not schedule it itself
                        self._due[key] = self._clock() + delay
                        heapq.heappush(self._heap, (self._due[key], key))
