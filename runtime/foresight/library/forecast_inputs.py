"""From forecasts to recommender inputs: the architecture the *predicted* load needs.

A ForecastTask that names an active library maps some of its forecast series to the recommender's
inputs, for example ``qps`` from the sum of a request-rate forecast over all series at the 720 h
horizon, ``total_data_size_gb`` from a storage forecast in bytes (``scale: 1e-9``), and gives the
rest as fixed values (``need_high_availability: true``). This module is the pure part of that:
values per series -> recommender inputs -> a :class:`Recommendation`, with no I/O, so the
ForecastTask runner (which has the forecast and the latest actuals) calls it twice, for the
predicted and for the current load, and reports a change between the two.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from foresight.timeseries import FloatArray, Forecast

from .recommend import Recommendation, Recommender, parse_inputs
from .records import BOOLEAN_INPUTS, NUMERIC_INPUTS

__all__ = [
    "ForecastRecommendation",
    "InputSource",
    "MappedInput",
    "inputs_from_forecast",
    "inputs_from_values",
    "recommend_from_forecast",
    "recommendation_changed",
]

Aggregate = Literal["sum", "max", "mean"]
Bound = Literal["point", "lower", "upper"]


@dataclass(frozen=True)
class InputSource:
    """One recommender input taken from forecast series.

    input: the recommender input it fills (``qps``, ``total_data_size_gb``, ...; numeric only).
    match: labels a series must carry to count (empty: every series of the forecast).
    horizon_seconds: how far after the forecast's origin; must be a whole number of steps.
    aggregate: how the matching series combine: ``sum`` (a cluster's QPS over its instances),
        ``max`` or ``mean``.
    bound: ``point`` forecast, or the ``upper`` / ``lower`` bound of its interval (size for
        the upper bound to be safe).
    scale: a unit factor applied after aggregating (bytes to GB: ``1e-9``).
    """

    input: str
    horizon_seconds: int
    match: Mapping[str, str] | None = None
    aggregate: Aggregate = "sum"
    bound: Bound = "point"
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.input not in NUMERIC_INPUTS:
            raise ValueError(
                f"{self.input!r} cannot come from a forecast; numeric inputs are {', '.join(NUMERIC_INPUTS)}"
            )
        if self.horizon_seconds <= 0:
            raise ValueError(f"{self.input}: horizon_seconds must be positive")
        if not math.isfinite(self.scale) or self.scale <= 0:
            raise ValueError(f"{self.input}: scale must be a positive number")

    def matches(self, key: Mapping[str, str]) -> bool:
        return all(key.get(k) == v for k, v in (self.match or {}).items())


@dataclass(frozen=True)
class MappedInput:
    """How one input was computed (for status and for a person checking the answer)."""

    input: str
    value: float
    series: int
    clamped: bool = False
    """The aggregate was negative (a forecast can dip below zero) and was raised to 0."""

    def to_json(self) -> dict[str, Any]:
        return {"input": self.input, "value": self.value, "series": self.series, "clamped": self.clamped}


def inputs_from_values(
    keys: Sequence[Mapping[str, str]],
    values: FloatArray,
    sources: Sequence[InputSource],
    fixed: Mapping[str, Any] | None = None,
) -> tuple[dict[str, float | bool], list[MappedInput]]:
    """Recommender inputs from one value per series (``values[i]`` belongs to ``keys[i]``).

    ``fixed`` inputs (requirement flags, table count...) are taken as given; an input both fixed and
    mapped is an error. Raises ``ValueError`` naming the input when no series matches or every
    matching value is missing (NaN).
    """
    fixed = dict(fixed or {})
    out: dict[str, Any] = {}
    detail: list[MappedInput] = []
    seen: set[str] = set()
    for src in sources:
        if src.input in fixed or src.input in seen:
            raise ValueError(f"{src.input} is given twice (fixed and from a forecast, or by two mappings)")
        seen.add(src.input)
        rows = [i for i, key in enumerate(keys) if src.matches(key)]
        picked = values[rows] if rows else np.array([], dtype=np.float64)
        picked = picked[np.isfinite(picked)]
        if picked.size == 0:
            what = f"series with labels {dict(src.match or {})}" if src.match else "series"
            raise ValueError(
                f"{src.input}: no {what} with a value to take it from ({len(keys)} series in the forecast)"
            )
        if src.aggregate == "sum":
            agg = float(np.sum(picked))
        elif src.aggregate == "max":
            agg = float(np.max(picked))
        else:
            agg = float(np.mean(picked))
        agg *= src.scale
        clamped = agg < 0.0 and src.input != "data_growth_rate"
        value = 0.0 if clamped else agg
        out[src.input] = value
        detail.append(MappedInput(src.input, value, int(picked.size), clamped))
    for name, value in fixed.items():
        if name not in NUMERIC_INPUTS + BOOLEAN_INPUTS:
            raise ValueError(f"{name!r} is not a recommender input")
        out[name] = value
    return parse_inputs(out), detail


def inputs_from_forecast(
    forecast: Forecast, sources: Sequence[InputSource], fixed: Mapping[str, Any] | None = None
) -> tuple[dict[str, float | bool], list[MappedInput]]:
    """Recommender inputs from a forecast: each source at its horizon (a whole number of steps)."""
    columns: dict[str, FloatArray] = {}
    for src in sources:
        steps, rest = divmod(src.horizon_seconds, forecast.step)
        if rest or not 1 <= steps <= forecast.horizon:
            raise ValueError(
                f"{src.input}: horizon {src.horizon_seconds}s is not one of the forecast's steps "
                f"({forecast.step}s x 1..{forecast.horizon})"
            )
        array = {"point": forecast.point, "lower": forecast.lower, "upper": forecast.upper}[src.bound]
        columns[src.input] = np.asarray(array[:, steps - 1], dtype=np.float64)
    values: dict[str, float | bool] = {}
    detail: list[MappedInput] = []
    for src in sources:
        v, d = inputs_from_values(forecast.keys, columns[src.input], [src])
        values.update(v)
        detail.extend(d)
    for name, value in parse_inputs(dict(fixed or {})).items():
        if name in values:
            raise ValueError(f"{name} is given twice (fixed and from a forecast)")
        values[name] = value
    return values, detail


@dataclass(frozen=True)
class ForecastRecommendation:
    """The recommendation for the predicted load, with how its inputs were computed."""

    inputs: Mapping[str, float | bool]
    mapped: tuple[MappedInput, ...]
    recommendation: Recommendation

    def to_json(self) -> dict[str, Any]:
        return {
            "inputs": dict(self.inputs),
            "mapped": [m.to_json() for m in self.mapped],
            "recommendation": self.recommendation.to_json(),
        }


def recommend_from_forecast(
    recommender: Recommender,
    forecast: Forecast,
    sources: Sequence[InputSource],
    fixed: Mapping[str, Any] | None = None,
) -> ForecastRecommendation:
    """Forecast values at their horizons -> recommender inputs -> the recommendation."""
    inputs, mapped = inputs_from_forecast(forecast, sources, fixed)
    return ForecastRecommendation(inputs, tuple(mapped), recommender.recommend(inputs))


def recommendation_changed(current: Recommendation, predicted: Recommendation) -> bool:
    """Whether the predicted load needs another architecture or node count than the current load."""
    if current.covered != predicted.covered:
        return True
    return (current.architecture_type, current.node_count) != (
        predicted.architecture_type,
        predicted.node_count,
    )
