"""A synthetic stream of the classifier's counters, for local runs, benchmarks and tests.

:class:`CounterSimulator` plays the serving pods and Prometheus: each :meth:`~CounterSimulator.step`
routes one analysis interval of requests by the current weights, draws errors, latencies and
feedback from each variant's :class:`VariantTruth`, and returns the cumulative
:class:`~foresight.experiment.state.Observation` the operator would have read from Prometheus
(metric keys :data:`ACCURACY`, :data:`ERROR_RATE`, :data:`LATENCY`). Seeded: the same seed gives
the same stream.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .aggregates import Moments, Proportion
from .state import Observation

__all__ = ["ACCURACY", "ERROR_RATE", "LATENCY", "CounterSimulator", "VariantTruth"]

ACCURACY = "accuracy"
ERROR_RATE = "error-rate"
LATENCY = "latency"


@dataclass(frozen=True)
class VariantTruth:
    """What a variant really does (the experiment has to find it out)."""

    accuracy: float = 0.8  # probability that an answer with feedback is correct
    error_rate: float = 0.005  # probability of a 5xx
    latency_mean: float = 0.05  # seconds
    latency_sd: float = 0.02  # seconds (log-normal latencies with this mean and spread)


class CounterSimulator:
    def __init__(
        self,
        truths: Mapping[str, VariantTruth],
        requests_per_second: float,
        interval_seconds: float,
        feedback_fraction: float = 1.0,
        seed: int = 0,
    ) -> None:
        self.truths = dict(truths)
        self.rate = requests_per_second
        self.interval = interval_seconds
        self.feedback = feedback_fraction
        self.rng = np.random.default_rng(seed)
        names = list(truths)
        self._acc = {v: [0.0, 0.0] for v in names}  # correct, feedback
        self._err = {v: [0.0, 0.0] for v in names}  # errors, requests
        self._lat = {v: [0.0, 0.0, 0.0] for v in names}  # count, sum, sum of squares

    def step(
        self, weights: Mapping[str, float], truths: Mapping[str, VariantTruth] | None = None
    ) -> Observation:
        """One interval of traffic at ``weights`` (``truths`` replaces variants' behaviour from now on)."""
        if truths:
            self.truths.update(truths)
        names = list(self.truths)
        w = np.array([max(0.0, float(weights.get(v, 0))) for v in names])
        total = self.rng.poisson(self.rate * self.interval)
        counts = self.rng.multinomial(total, w / w.sum()) if w.sum() > 0 else np.zeros(len(names), int)
        for v, n in zip(names, counts, strict=True):
            t = self.truths[v]
            n = int(n)
            errors = int(self.rng.binomial(n, t.error_rate))
            answered = n - errors
            with_feedback = int(self.rng.binomial(answered, self.feedback))
            correct = int(self.rng.binomial(with_feedback, t.accuracy))
            sigma2 = math.log1p((t.latency_sd / t.latency_mean) ** 2)
            lat = self.rng.lognormal(math.log(t.latency_mean) - sigma2 / 2, math.sqrt(sigma2), n)
            self._acc[v][0] += correct
            self._acc[v][1] += with_feedback
            self._err[v][0] += errors
            self._err[v][1] += n
            self._lat[v][0] += n
            self._lat[v][1] += float(lat.sum())
            self._lat[v][2] += float((lat * lat).sum())
        return self.observation()

    def observation(self) -> Observation:
        """The cumulative counters as the analysis reads them (variants without data left out)."""
        return Observation(
            metrics={
                ACCURACY: {v: Proportion(successes=s, trials=n) for v, (s, n) in self._acc.items() if n > 0},
                ERROR_RATE: {
                    v: Proportion(successes=s, trials=n) for v, (s, n) in self._err.items() if n > 0
                },
                LATENCY: {
                    v: Moments(count=c, total=s, total_sq=q) for v, (c, s, q) in self._lat.items() if c > 0
                },
            },
            traffic={v: n for v, (_, n) in self._err.items()},
        )
