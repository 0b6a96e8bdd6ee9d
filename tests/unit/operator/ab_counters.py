"""The classifier's counters as Prometheus would answer them, for ABExperiment handler tests.

:class:`CounterStore` keeps cumulative counter series (name + labels -> value), fed from a
:class:`~foresight.experiment.simulation.CounterSimulator` with the series and labels the
classifier exports (:mod:`foresight.experiment.counters`), and answers the one query shape the
controller asks, ``sum by (<labels>) (increase(<metric>{<matchers>}[<window>]))``, by applying the
matchers (=, !=, =~, !~) and summing by the ``by`` labels. Since the controller's window always
starts with the experiment, the increase is the cumulative value. A real Prometheus answers the
same queries in tests/integration/prometheus/test_abexperiment_readout.py and the end-to-end test.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from foresight.experiment import counters
from foresight.experiment.simulation import CounterSimulator
from foresight.prometheus.client import InstantSample
from foresight.prometheus.errors import PrometheusUnavailable, PromQLError

__all__ = ["CounterStore"]

_QUERY = re.compile(r"^sum by \(([\w, ]+)\) \(increase\(([a-zA-Z_:][\w:]*)\{(.*)\}\[(\d+)s\]\)\)$")
_MATCHER = re.compile(r'(\w+)(=~|!~|!=|=)"((?:[^"\\]|\\.)*)"')
Labels = tuple[tuple[str, str], ...]


@dataclass
class CounterStore:
    target: dict[str, str] = field(default_factory=lambda: {"namespace": "photos", "job": "photo-classifier"})
    """The labels the scrape adds to every series (Kubernetes service discovery's namespace)."""
    series: dict[tuple[str, Labels], float] = field(default_factory=dict)
    queries: list[str] = field(default_factory=list)
    fail_with: Exception | None = None

    def set(self, metric: str, labels: Mapping[str, str], value: float) -> None:
        self.series[(metric, tuple(sorted({**self.target, **labels}.items())))] = value

    def load(self, sim: CounterSimulator) -> None:
        """The simulator's cumulative counts as the classifier's series (what a scrape would give)."""
        obs = sim.observation()
        for variant, agg in obs.metrics.get("error-rate", {}).items():
            errors = getattr(agg, "successes", 0.0)
            base = {"endpoint": counters.CLASSIFY_ENDPOINT, "variant": variant}
            self.set(counters.REQUESTS_TOTAL, {**base, "status": "200"}, agg.n - errors)
            self.set(counters.REQUESTS_TOTAL, {**base, "status": "502"}, errors)
        for variant, agg in obs.metrics.get("latency", {}).items():
            base = {"endpoint": counters.CLASSIFY_ENDPOINT, "variant": variant}
            self.set(f"{counters.REQUEST_SECONDS}_count", base, getattr(agg, "count", 0.0))
            self.set(f"{counters.REQUEST_SECONDS}_sum", base, getattr(agg, "total", 0.0))
            self.set(counters.REQUEST_SECONDS_SQUARED, base, getattr(agg, "total_sq", 0.0))
        for variant, agg in obs.metrics.get("accuracy", {}).items():
            correct = getattr(agg, "successes", 0.0)
            self.set(counters.FEEDBACK_TOTAL, {"variant": variant, "correct": "true"}, correct)
            self.set(counters.FEEDBACK_TOTAL, {"variant": variant, "correct": "false"}, agg.n - correct)

    def query(self, expr: str, time: float | None = None) -> list[InstantSample]:
        self.queries.append(expr)
        if self.fail_with is not None:
            raise self.fail_with
        m = _QUERY.match(expr)
        if m is None:
            raise PromQLError(expr, f"the fake understands one query shape only, not {expr!r}")
        by = [b.strip() for b in m.group(1).split(",")]
        metric, matchers = m.group(2), _MATCHER.findall(m.group(3))
        for _, op, value in matchers:
            if op in ("=~", "!~"):
                try:
                    re.compile(value)
                except re.error as exc:
                    raise PromQLError(expr, f"1:1: parse error: error parsing regexp: {exc}") from exc
        out: dict[Labels, float] = {}
        for (name, labels), value in self.series.items():
            have = dict(labels)
            if name != metric or not all(_matches(have.get(k, ""), op, v) for k, op, v in matchers):
                continue
            key = tuple((b, have.get(b, "")) for b in by if have.get(b, ""))
            out[key] = out.get(key, 0.0) + value
        return [InstantSample(dict(k), time or 0.0, v) for k, v in out.items()]

    @staticmethod
    def unavailable(url: str) -> PrometheusUnavailable:
        return PrometheusUnavailable(url, "connection failed: ConnectionError")


def _matches(have: str, op: str, want: str) -> bool:
    if op == "=":
        return have == want
    if op == "!=":
        return have != want
    full = re.fullmatch(want, have) is not None
    return full if op == "=~" else not full
