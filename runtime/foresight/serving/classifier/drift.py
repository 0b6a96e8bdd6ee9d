"""Prediction drift (seed 004): the categories a variant serves now against a baseline window, as PSI.

The ledger counts the answers served per variant, category and UTC hour in the store (all worker
processes and replicas together). For each variant the monitor compares the recent window (the
last ``monitoring.driftWindowHours`` hours, the current one included) with the baseline (the
``monitoring.driftBaselineHours`` hours before it) by the population stability index

    PSI = sum over categories of (p_recent - p_baseline) * ln(p_recent / p_baseline)

with each share floored at :data:`FLOOR` so that a category absent from one window is a large
but finite term. The usual reading: under 0.1 no shift, 0.1 to 0.25 a moderate one, above 0.25
a significant one (the shipped alert fires above 0.25, ``examples/monitoring``). A window with
fewer than ``monitoring.driftMinSamples`` answers gives no score (the gauge is absent, not 0):
a quiet hour is not evidence of stability. The gauges are computed at most every
``monitoring.refreshSeconds`` and served at ``/metrics``:

- ``foresight_classifier_prediction_drift_psi{variant}``;
- ``foresight_classifier_prediction_drift_samples{variant, window="recent"|"baseline"}``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from foresight.contract.classifier import MonitoringConfig

from .errors import StoreError
from .store.base import ResultStore

__all__ = ["FLOOR", "DriftMonitor", "DriftScore", "psi"]

log = logging.getLogger(__name__)

FLOOR = 1e-4
"""The smallest share a category gets in either window (keeps the logarithm finite)."""


def psi(recent: Mapping[str, float], baseline: Mapping[str, float], categories: Sequence[str]) -> float:
    """The population stability index of ``recent`` against ``baseline`` (counts per category)."""
    n_recent, n_base = sum(recent.values()), sum(baseline.values())
    if n_recent <= 0 or n_base <= 0:
        raise ValueError("both windows need answers")
    total = 0.0
    for c in categories:
        p = max(recent.get(c, 0.0) / n_recent, FLOOR)
        q = max(baseline.get(c, 0.0) / n_base, FLOOR)
        total += (p - q) * math.log(p / q)
    return total


@dataclass(frozen=True)
class DriftScore:
    variant: str
    psi: float | None
    recent: int
    baseline: int


def _hour(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H", time.gmtime(ts))


class DriftMonitor(Collector):
    """Computes the drift gauges from the store (cached) and serves them as a Prometheus collector."""

    def __init__(
        self,
        store: ResultStore,
        settings: MonitoringConfig,
        *,
        categories: Sequence[str],
        variants: Sequence[str],
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.settings = settings
        self.categories = list(categories)
        self.variants = list(variants)
        self.clock = clock
        self.scores: list[DriftScore] = []
        self._computed_at: float | None = None
        self._lock = threading.Lock()

    def compute(self) -> list[DriftScore]:
        """Every variant's score now (reads the store)."""
        s = self.settings
        now = self.clock()
        recent_first = now - (s.drift_window_hours - 1) * 3600
        base_last = recent_first - 3600
        base_first = base_last - (s.drift_baseline_hours - 1) * 3600
        recent = self.store.category_hours(_hour(recent_first), _hour(now))
        baseline = self.store.category_hours(_hour(base_first), _hour(base_last))
        scores = []
        for variant in self.variants:
            r = {c: float(n) for (v, c), n in recent.items() if v == variant}
            b = {c: float(n) for (v, c), n in baseline.items() if v == variant}
            nr, nb = int(sum(r.values())), int(sum(b.values()))
            enough = nr >= s.drift_min_samples and nb >= s.drift_min_samples
            scores.append(DriftScore(variant, psi(r, b, self.categories) if enough else None, nr, nb))
        return scores

    def refresh_if_stale(self) -> None:
        """Recompute when the last scores are older than ``refreshSeconds`` (blocking: in a thread)."""
        with self._lock:
            now = self.clock()
            if self._computed_at is not None and now - self._computed_at < self.settings.refresh_seconds:
                return
            try:
                self.scores = self.compute()
            except StoreError as exc:
                log.error("could not compute prediction drift: %s", exc)
            self._computed_at = now

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # no collection at registration: the store may not be up yet

    def collect(self) -> Iterator[GaugeMetricFamily]:
        value = GaugeMetricFamily(
            "foresight_classifier_prediction_drift_psi",
            "Population stability index of the categories served in the recent window against the "
            "baseline window, per variant (absent while a window has too few answers).",
            labels=["variant"],
        )
        samples = GaugeMetricFamily(
            "foresight_classifier_prediction_drift_samples",
            "Answers in each drift window, per variant.",
            labels=["variant", "window"],
        )
        for score in self.scores:
            if score.psi is not None:
                value.add_metric([score.variant], score.psi)
            samples.add_metric([score.variant, "recent"], score.recent)
            samples.add_metric([score.variant, "baseline"], score.baseline)
        yield value
        yield samples
