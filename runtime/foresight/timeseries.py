"""The data contract between ingestion, models and write-back.

A :class:`Panel` is many series on one regular time grid (the shape every forecasting model here
consumes); a :class:`Forecast` is what a model returns for a panel. Both are plain numpy
containers with no I/O, so ingestion (Prometheus), the synthetic generator and the models can
be developed and tested apart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

__all__ = ["FloatArray", "Forecast", "Panel", "finite_or_none", "rfc3339", "series_text"]


def finite_or_none(x: float) -> float | None:
    """``x`` as a float, or ``None`` for NaN and infinities (JSON has neither; ``null`` parses)."""
    return float(x) if math.isfinite(x) else None


def rfc3339(seconds: float) -> str:
    """Unix ``seconds`` as an RFC 3339 UTC time (``2026-03-01T06:00:00Z``): how times appear in
    messages, status and tables, never as raw epoch seconds."""
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def series_text(key: Mapping[str, str]) -> str:
    """A series as messages and tables name it: ``user=alice,cluster=east`` (``{}`` when it has no
    labels: everything merged into one series)."""
    return ",".join(f"{k}={v}" for k, v in key.items()) or "{}"


@dataclass
class Panel:
    """Series on a common grid: ``values[i, t]`` is series ``i`` at ``start + t * step``.

    Missing samples are NaN (gaps are never silently filled here; models decide).
    """

    start: int
    """Unix seconds of the first column, aligned to ``step``."""
    step: int
    """Grid step in seconds."""
    keys: list[dict[str, str]]
    """One label set per series (the ``groupBy`` labels)."""
    values: FloatArray
    """Shape ``(n_series, n_steps)``."""
    covariates: dict[str, FloatArray] = field(default_factory=dict)
    """Extra inputs, each shaped like ``values`` (e.g. write rate next to usage)."""
    capacity: FloatArray | None = None
    """Per-series limit, shape ``(n_series,)``, or ``None`` when the task has no threshold."""

    def __post_init__(self) -> None:
        if self.values.ndim != 2:
            raise ValueError(f"Panel.values must be 2-D (series, steps), got shape {self.values.shape}")
        if len(self.keys) != self.values.shape[0]:
            raise ValueError(f"Panel has {len(self.keys)} keys but {self.values.shape[0]} rows of values")
        for name, cov in self.covariates.items():
            if cov.shape != self.values.shape:
                raise ValueError(f"covariate {name!r} has shape {cov.shape}, expected {self.values.shape}")
        if self.capacity is not None and self.capacity.shape != (self.values.shape[0],):
            raise ValueError(f"capacity has shape {self.capacity.shape}, expected ({self.values.shape[0]},)")

    @property
    def n_series(self) -> int:
        return int(self.values.shape[0])

    @property
    def n_steps(self) -> int:
        return int(self.values.shape[1])

    @property
    def end(self) -> int:
        """Unix seconds of the last column."""
        return self.start + (self.n_steps - 1) * self.step

    def timestamps(self) -> npt.NDArray[np.int64]:
        return self.start + self.step * np.arange(self.n_steps, dtype=np.int64)

    def select(self, rows: npt.ArrayLike) -> Panel:
        """The panel restricted to some series (by index or boolean mask)."""
        idx = np.arange(self.n_series)[np.asarray(rows)]
        return Panel(
            start=self.start,
            step=self.step,
            keys=[self.keys[i] for i in idx],
            values=self.values[idx],
            covariates={k: v[idx] for k, v in self.covariates.items()},
            capacity=None if self.capacity is None else self.capacity[idx],
        )

    def head(self, n_steps: int) -> Panel:
        """The first ``n_steps`` columns (a forecast origin for backtests)."""
        return Panel(
            start=self.start,
            step=self.step,
            keys=self.keys,
            values=self.values[:, :n_steps],
            covariates={k: v[:, :n_steps] for k, v in self.covariates.items()},
            capacity=self.capacity,
        )


@dataclass
class Forecast:
    """A model's output for a panel: ``horizon`` steps after ``panel.end``."""

    origin: int
    """Unix seconds of the last observed column; step ``h`` (1-based) is ``origin + h * step``."""
    step: int
    keys: list[dict[str, str]]
    point: FloatArray
    """Shape ``(n_series, horizon)``."""
    lower: FloatArray
    """Lower bound of the prediction interval, same shape as ``point``."""
    upper: FloatArray
    """Upper bound of the prediction interval, same shape as ``point``."""
    model: list[str]
    """The model that produced each series' row (``auto`` may pick per series)."""
    level: float = 0.8
    """Nominal coverage of ``[lower, upper]``."""

    @property
    def horizon(self) -> int:
        return int(self.point.shape[1])

    def select(self, rows: npt.ArrayLike) -> Forecast:
        """The forecast restricted to some series (by index or boolean mask), as :meth:`Panel.select`."""
        idx = np.arange(len(self.keys))[np.asarray(rows)]
        return Forecast(
            origin=self.origin,
            step=self.step,
            keys=[self.keys[i] for i in idx],
            point=self.point[idx],
            lower=self.lower[idx],
            upper=self.upper[idx],
            model=[self.model[i] for i in idx],
            level=self.level,
        )
