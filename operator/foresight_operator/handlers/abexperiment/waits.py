"""When an ABExperiment with a problem is looked at again: a backoff, cut short by what it waits for.

An experiment whose ClassifierService or ModelVersion is missing (or that has any other problem of
the controller's ``_PROBLEMS``) was reconciled at every timer tick (5 s): three API calls per tick
each, so 250 such experiments made an idle operator send 9,000 requests a minute. Now each failure
in a row doubles the wait (:class:`~foresight_operator.schedule.Backoff`, the helper ForecastTask
and ModelLibrary retries use), up to :data:`CAP`; and the events of the objects the experiment
names make it due at the next tick: its ClassifierService (created, changed, its Deployment
rolled out), one of its variants' ModelVersions (created, Ready), another experiment of the same
service deleted (a routing conflict resolved). An invalid spec waits for the spec to change (the
update handler reconciles then). Secrets and Prometheus are not watched: those waits rely on the
backoff alone.

Kept in memory only: after an operator restart the resume handler reconciles every experiment,
which records its wait again.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from ...schedule import Backoff

__all__ = ["CAP", "Waits"]

CAP = timedelta(minutes=5)
"""The longest wait at time scale 1: what is not watched (a Secret, Prometheus coming back) is
noticed within this; shorter than ForecastTask's 10 min because a running experiment's analyses
stop while it waits."""

Key = tuple[str, str]


@dataclass(frozen=True)
class _Wait:
    generation: int | None
    failures: int
    retry_at: datetime | None
    """``None``: not before the spec changes."""
    service: str | None
    model_versions: frozenset[str]


def _references(body: Mapping[str, Any]) -> tuple[str | None, frozenset[str]]:
    """The ClassifierService and ModelVersions the experiment names (from the raw spec: it may not
    parse)."""
    spec = body.get("spec") or {}
    service = spec.get("service")
    variants = spec.get("variants")
    variants = variants if isinstance(variants, list) else []
    names = {str(v["modelVersion"]) for v in variants if isinstance(v, Mapping) and v.get("modelVersion")}
    return (str(service) if service else None), frozenset(names)


class Waits:
    """Per experiment: failures in a row and when to look again; thread-safe (kopf's event handlers
    and timers run in worker threads)."""

    def __init__(self, backoff: Backoff) -> None:
        self.backoff = backoff
        self._waits: dict[Key, _Wait] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._waits)

    def failed(self, body: Mapping[str, Any], now: datetime, *, until_spec_changes: bool = False) -> None:
        """A pass over ``body`` ended with a problem: the next look is one backoff later (the
        failures of an earlier generation do not count)."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        generation = meta.get("generation")
        service, models = _references(body)
        with self._lock:
            old = self._waits.get(key)
            failures = (old.failures if old is not None and old.generation == generation else 0) + 1
            retry_at = None if until_spec_changes else now + self.backoff.delay(failures)
            self._waits[key] = _Wait(generation, failures, retry_at, service, models)

    def cleared(self, namespace: str, name: str) -> None:
        """A pass went through (or the experiment is gone): no wait."""
        with self._lock:
            self._waits.pop((namespace, name), None)

    def due(self, namespace: str, name: str, now: datetime) -> bool:
        """Whether a tick should look at the experiment's problem again (True when none is recorded)."""
        with self._lock:
            wait = self._waits.get((namespace, name))
        return wait is None or (wait.retry_at is not None and now >= wait.retry_at)

    def delay(self, namespace: str, name: str, now: datetime) -> timedelta | None:
        """How long until the next look (``None``: no wait recorded, or until the spec changes)."""
        with self._lock:
            wait = self._waits.get((namespace, name))
        return None if wait is None or wait.retry_at is None else max(timedelta(0), wait.retry_at - now)

    def wake(
        self, namespace: str, now: datetime, *, service: str | None = None, model_version: str | None = None
    ) -> list[str]:
        """Make the experiments of ``namespace`` waiting on ``service`` or ``model_version`` due now
        (their failures in a row are kept); returns their names. Spec errors keep waiting."""
        woken = []
        with self._lock:
            for (ns, name), wait in list(self._waits.items()):
                if ns != namespace or wait.retry_at is None:
                    continue
                if (service is not None and wait.service == service) or (
                    model_version is not None and model_version in wait.model_versions
                ):
                    self._waits[(ns, name)] = replace(wait, retry_at=now)
                    woken.append(name)
        return woken
