"""An in-memory stand-in for Prometheus' query API, for when no real Prometheus can be started.

``foresight demo`` falls back to it (and says so) on machines where the Prometheus binaries cannot
be installed; unit tests of the forecast pipeline use it where a real server is not the point. It answers
what ingestion asks (``query_range`` and instant ``query``) with Prometheus' selection rules for
plain selectors: a sample counts at an evaluation time if it is the latest one at or before that
time and at most 5 minutes old (Prometheus' default lookback delta).

It understands only selectors (``metric`` or ``metric{label="v",other!="w"}``), plus canned
answers registered for exact expressions (:meth:`MemoryPrometheus.add_expression`: e.g. the demo
registers what ``sum by (...) (rate(written_total[1h]))`` evaluates to); anything else raises
:class:`foresight.prometheus.PromQLError`, as a real server would for a query it cannot run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from foresight.prometheus.client import InstantSample, PrometheusClient, RangeSeries, align_range
from foresight.prometheus.errors import PromQLError
from foresight.timeseries import FloatArray, Panel

__all__ = ["LOOKBACK_DELTA", "MemoryPrometheus"]

LOOKBACK_DELTA = 300
"""Seconds a sample stays current for instant evaluation (Prometheus' default)."""

_SELECTOR = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{(.*)\})?\s*$")
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=|!=)\s*"((?:[^"\\]|\\.)*)"\s*')


@dataclass(frozen=True)
class _Series:
    labels: dict[str, str]
    timestamps: npt.NDArray[np.int64]
    values: FloatArray


def _normalise(expr: str) -> str:
    return "".join(expr.split())


def _parse(expr: str) -> tuple[str, list[tuple[str, str, str]]]:
    m = _SELECTOR.match(expr)
    if not m:
        raise PromQLError(
            expr,
            'the in-memory stand-in understands only selectors like name{label="value"}; '
            "start a real Prometheus for functions and aggregations",
        )
    name, body = m.group(1), m.group(2) or ""
    matchers: list[tuple[str, str, str]] = []
    pos = 0
    while pos < len(body):
        mm = _MATCHER.match(body, pos)
        if not mm:
            raise PromQLError(expr, f"parse error in label matchers at char {pos + 1}: {body[pos:]!r}")
        matchers.append((mm.group(1), mm.group(2), mm.group(3)))
        pos = mm.end()
        if pos < len(body):
            if body[pos] != ",":
                raise PromQLError(expr, f"unexpected {body[pos]!r} in label matchers; expected ','")
            pos += 1
    return name, matchers


class MemoryPrometheus(PrometheusClient):
    """Series held in memory, queried like Prometheus (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__("memory://prometheus")
        self._series: list[_Series] = []
        self._canned: dict[str, list[_Series]] = {}

    def __repr__(self) -> str:
        return f"MemoryPrometheus({len(self._series)} series)"

    def add(
        self, name: str, labels: Mapping[str, str], timestamps: npt.ArrayLike, values: npt.ArrayLike
    ) -> None:
        """One series; NaN values are treated as absent samples."""
        ts = np.asarray(timestamps, dtype=np.int64)
        vals = np.asarray(values, dtype=np.float64)
        ok = np.isfinite(vals)
        order = np.argsort(ts[ok], kind="stable")
        self._series.append(_Series({"__name__": name, **labels}, ts[ok][order], vals[ok][order]))

    def add_expression(
        self, expr: str, labels: Mapping[str, str], timestamps: npt.ArrayLike, values: npt.ArrayLike
    ) -> None:
        """A canned result series for the exact expression ``expr`` (whitespace-insensitive)."""
        ts = np.asarray(timestamps, dtype=np.int64)
        vals = np.asarray(values, dtype=np.float64)
        ok = np.isfinite(vals)
        order = np.argsort(ts[ok], kind="stable")
        self._canned.setdefault(_normalise(expr), []).append(
            _Series(dict(labels), ts[ok][order], vals[ok][order])
        )

    def add_panel(
        self,
        panel: Panel,
        name: str,
        *,
        covariates: Mapping[str, str] | None = None,
        capacity_metric: str | None = None,
    ) -> None:
        """Every row of ``panel`` as ``name{<key labels>}``; covariates and capacity as their own metrics."""
        ts = panel.timestamps()
        for key, row in zip(panel.keys, panel.values, strict=True):
            self.add(name, key, ts, row)
        for cov, metric in (covariates or {}).items():
            for key, row in zip(panel.keys, panel.covariates[cov], strict=True):
                self.add(metric, key, ts, row)
        if capacity_metric is not None and panel.capacity is not None:
            for key, cap in zip(panel.keys, panel.capacity, strict=True):
                self.add(capacity_metric, key, ts, np.full(len(ts), cap))

    def _select(self, expr: str) -> list[_Series]:
        canned = self._canned.get(_normalise(expr))
        if canned is not None:
            return canned
        name, matchers = _parse(expr)
        out = []
        for s in self._series:
            if s.labels.get("__name__") != name:
                continue
            if all((s.labels.get(k, "") == v) == (op == "=") for k, op, v in matchers):
                out.append(s)
        return out

    @staticmethod
    def _at(s: _Series, times: npt.NDArray[np.int64]) -> FloatArray:
        idx = np.searchsorted(s.timestamps, times, side="right") - 1
        out = np.full(len(times), np.nan)
        ok = idx >= 0
        fresh = ok.copy()
        fresh[ok] = times[ok] - s.timestamps[idx[ok]] <= LOOKBACK_DELTA
        out[fresh] = s.values[idx[fresh]]
        return out

    def query(self, expr: str, time: float | None = None) -> list[InstantSample]:
        if time is None:
            time = max((float(s.timestamps[-1]) for s in self._series if len(s.timestamps)), default=0.0)
        at = int(time)
        out = []
        for s in self._select(expr):
            v = float(self._at(s, np.array([at], dtype=np.int64))[0])
            if np.isfinite(v):
                labels = {k: val for k, val in s.labels.items() if k != "__name__"}
                out.append(InstantSample(labels, float(at), v))
        return out

    def query_range(
        self, expr: str, start: float, end: float, step: int, *, series_hint: int | None = None
    ) -> list[RangeSeries]:
        s0, e0 = align_range(start, end, step)
        grid = np.arange(s0, e0 + 1, step, dtype=np.int64)
        out = []
        for s in self._select(expr):
            vals = self._at(s, grid)
            ok = np.isfinite(vals)
            if ok.any():
                labels = {k: v for k, v in s.labels.items() if k != "__name__"}
                out.append(RangeSeries(labels, grid[ok], vals[ok]))
        return out
