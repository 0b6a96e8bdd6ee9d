"""A ForecastTask's capacity recommendation: its forecasts mapped to a model library's recommender.

Seed 000's libraries hold database capacity-planning cases (a workload in, the architecture sized
for it out). A ForecastTask that names an active library (``spec.recommendation``) maps some of its
forecast series, at one horizon, to the recommender's inputs (``qps`` from the sum of a request-rate
forecast, ``total_data_size_gb`` from a storage forecast in bytes with ``scale: 1e-9``), gives the
rest as constants (``need_high_availability: true``), and every run writes the architecture the
*predicted* load needs next to the one today's load needs (gauges, ``status.recommendation``, and an
event when the two differ).

The input names are the library format's own (snake_case, as in a case file and in
``foresight recommend --set``), not camelCase: they name fields of the cases they are compared with.
The run reads the library's active version from the task's own artifact store, under
``modellibraries/<namespace>/<library>/``: where a ModelLibrary of the same namespace whose
``spec.store`` is that store activates it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from .meta import DNS_LABEL_PATTERN, ApiModel, Duration
from .rules import at_least, cel, field_rules

__all__ = [
    "BOOLEAN_INPUTS",
    "NUMERIC_INPUTS",
    "RECOMMENDATION_RULES",
    "RecommendationConstants",
    "RecommendationInputs",
    "RecommendationReason",
    "RecommendationSpec",
    "RecommendationStatus",
    "RecommendedArchitecture",
    "SeriesInput",
]

NUMERIC_INPUTS: tuple[str, ...] = (
    "total_data_size_gb",
    "table_count",
    "qps",
    "tps",
    "concurrent_connections",
    "data_growth_rate",
)
"""The recommender's numeric inputs (docs/library-format.md); each may come from a forecast."""
BOOLEAN_INPUTS: tuple[str, ...] = (
    "need_high_availability",
    "need_disaster_recovery",
    "need_read_write_split",
)
"""The requirement flags: constants only."""


class RecommendationReason(StrEnum):
    """``status.recommendation.reason``: what the last run made of the recommendation."""

    RECOMMENDED = "Recommended"
    """Both the predicted and the current load got an answer (either may be outside coverage)."""
    OUTSIDE_COVERAGE = "OutsideCoverage"
    """The predicted load lies outside what the library covers: no architecture, the reasons say why."""
    LIBRARY_NOT_ACTIVE = "LibraryNotActive"
    """The library has no active version in the task's artifact store."""
    LIBRARY_UNAVAILABLE = "LibraryUnavailable"
    """The store could not be read, or the stored version failed its checksums."""
    INPUTS_UNAVAILABLE = "InputsUnavailable"
    """No forecast series matched an input's selector (or its values were all missing)."""


class SeriesInput(ApiModel):
    """One recommender input taken from the task's forecast at the recommendation's horizon."""

    series: dict[str, Annotated[str, Field(max_length=1024)]] = Field(
        default_factory=dict,
        max_length=8,
        description="series: labels a forecast series must carry, with these exact values, to count "
        "(the task's groupBy labels, like a matchLabels selector); empty: every series of the task.",
    )
    aggregate: Literal["sum", "max", "mean"] = Field(
        default="sum",
        description="aggregate: how the matching series combine: `sum` (a service's QPS over its "
        "instances), `max` or `mean`.",
    )
    bound: Literal["point", "lower", "upper"] = Field(
        default="point",
        description="bound: the point forecast, or the `upper` (sizing on the safe side) or `lower` edge "
        "of its band.",
    )
    scale: float = Field(
        default=1.0,
        gt=0,
        le=1e12,
        description="scale: a unit factor applied after aggregating, more than 0 (bytes to GB: `1e-9`).",
    )


class RecommendationInputs(ApiModel):
    """The recommender inputs taken from forecasts, by their names in the library format."""

    total_data_size_gb: SeriesInput | None = Field(
        default=None,
        alias="total_data_size_gb",
        description="total_data_size_gb: data size in GB (10^9 bytes), one copy.",
    )
    table_count: SeriesInput | None = Field(
        default=None, alias="table_count", description="table_count: tables."
    )
    qps: SeriesInput | None = Field(
        default=None, alias="qps", description="qps: peak queries per second, reads and writes."
    )
    tps: SeriesInput | None = Field(
        default=None, alias="tps", description="tps: peak write transactions per second."
    )
    concurrent_connections: SeriesInput | None = Field(
        default=None,
        alias="concurrent_connections",
        description="concurrent_connections: peak concurrent client connections.",
    )
    data_growth_rate: SeriesInput | None = Field(
        default=None,
        alias="data_growth_rate",
        description="data_growth_rate: data growth in percent per year.",
    )


class RecommendationConstants(ApiModel):
    """Recommender inputs that do not come from a forecast (the requirement flags, a table count)."""

    total_data_size_gb: float | None = Field(
        default=None, alias="total_data_size_gb", ge=0, le=1e7, description="total_data_size_gb: in GB."
    )
    table_count: int | None = Field(
        default=None, alias="table_count", ge=0, le=10_000_000, description="table_count: tables."
    )
    qps: float | None = Field(default=None, alias="qps", ge=0, le=1e9, description="qps: peak queries/s.")
    tps: float | None = Field(
        default=None, alias="tps", ge=0, le=1e9, description="tps: peak transactions/s."
    )
    concurrent_connections: int | None = Field(
        default=None,
        alias="concurrent_connections",
        ge=0,
        le=100_000_000,
        description="concurrent_connections: peak client connections.",
    )
    data_growth_rate: float | None = Field(
        default=None,
        alias="data_growth_rate",
        ge=-100,
        le=10_000,
        description="data_growth_rate: percent per year.",
    )
    need_high_availability: bool | None = Field(
        default=None,
        alias="need_high_availability",
        description="need_high_availability: survive the loss of a node without losing data.",
    )
    need_disaster_recovery: bool | None = Field(
        default=None,
        alias="need_disaster_recovery",
        description="need_disaster_recovery: survive the loss of a site or region.",
    )
    need_read_write_split: bool | None = Field(
        default=None,
        alias="need_read_write_split",
        description="need_read_write_split: reads must be served by replicas.",
    )


def _has_any(names: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"has(self.inputs.{n})" for n in names) + "].exists(x, x)"


RECOMMENDATION_RULES = (
    cel(
        _has_any(NUMERIC_INPUTS),
        "inputs needs at least one input from a forecast (e.g. qps or total_data_size_gb); "
        "a recommendation that uses no forecast is `foresight recommend --set ...`",
        field_path=".inputs",
    ),
    *(
        cel(
            f"!(has(self.inputs.{n}) && has(self.constants.{n}))",
            f"{n} is given both in inputs and in constants: keep one",
            field_path=f".constants.{n}",
        )
        for n in NUMERIC_INPUTS
    ),
)


class RecommendationSpec(ApiModel):
    """spec.recommendation: the architecture the predicted load needs, from an active model library."""

    model_config = ConfigDict(json_schema_extra=field_rules(*RECOMMENDATION_RULES))

    library: str = Field(
        pattern=DNS_LABEL_PATTERN,
        max_length=63,
        description="library: the library's name as its manifest gives it (`status.libraryName` of the "
        "ModelLibrary that activated it, e.g. `postgresql-oltp`). Each run reads its active version from "
        "this task's artifact store (spec.artifacts) under `modellibraries/<namespace>/<library>/`, "
        "where a ModelLibrary of this namespace with the same spec.store activates it.",
    )
    horizon: Annotated[Duration, at_least("1s", "a horizon shorter than a step forecasts nothing")] | None = (
        Field(
            default=None,
            description="horizon: how far ahead the predicted load is read, a whole number of "
            "source.step within the task's horizon (unset: the task's horizon).",
        )
    )
    inputs: RecommendationInputs = Field(
        description="inputs: the recommender inputs taken from forecasts, at least one; the names are "
        "the library format's (total_data_size_gb, table_count, qps, tps, concurrent_connections, "
        "data_growth_rate).",
    )
    constants: RecommendationConstants = Field(
        default_factory=RecommendationConstants,
        description="constants: inputs given as values (need_high_availability, need_disaster_recovery, "
        "need_read_write_split, or a numeric input no forecast gives). Inputs given nowhere are left out "
        "of the distance.",
    )
    neighbours: int = Field(
        default=5, ge=1, le=50, description="neighbours: nearest cases that vote (k), 1 to 50."
    )


class RecommendedArchitecture(ApiModel):
    """The recommender's answer for one load."""

    covered: bool = Field(description="covered: false when the load lies outside what the library covers.")
    architecture: Literal["standalone", "primary_standby", "read_write_split", "distributed"] | None = Field(
        default=None, description="architecture: the recommended architecture_type."
    )
    nodes: int | None = Field(default=None, ge=0, description="nodes: database nodes, replicas included.")
    shards: int | None = Field(default=None, ge=0, description="shards: partitions of the data.")
    replicas: int | None = Field(default=None, ge=0, description="replicas: copies of each shard.")
    proxies: int | None = Field(default=None, ge=0, description="proxies: proxies or poolers in front.")
    estimated_cost: float | None = Field(
        default=None, ge=0, description="estimatedCost: in currency per costPeriod (the library's)."
    )
    currency: str | None = Field(default=None, max_length=8, description="currency: of estimatedCost.")
    cost_period: str | None = Field(default=None, max_length=8, description="costPeriod: of estimatedCost.")
    confidence: float | None = Field(
        default=None, ge=0, le=1, description="confidence: the weighted vote share of the architecture."
    )
    cases: list[Annotated[str, Field(max_length=128)]] = Field(
        default_factory=list, max_length=50, description="cases: ids of the nearest cases it answered from."
    )
    inputs: dict[str, float] = Field(
        default_factory=dict, description="inputs: the numeric inputs of this load, by their library names."
    )
    reasons: list[Annotated[str, Field(max_length=512)]] = Field(
        default_factory=list, max_length=10, description="reasons: why the load is outside coverage."
    )


class RecommendationStatus(ApiModel):
    """status.recommendation: what the last run recommended, for the predicted and the current load."""

    library: str = Field(max_length=63, description="library: the library it answered from.")
    library_version: str | None = Field(
        default=None, max_length=63, description="libraryVersion: its active version at the run."
    )
    horizon: str | None = Field(
        default=None, max_length=32, description="horizon: how far ahead the predicted load was read."
    )
    reason: RecommendationReason = Field(description="reason: Recommended, or why there is none.")
    message: str = Field(default="", max_length=2048, description="message: the answer in words.")
    predicted: RecommendedArchitecture | None = Field(
        default=None, description="predicted: the architecture the forecast load at the horizon needs."
    )
    current: RecommendedArchitecture | None = Field(
        default=None, description="current: the architecture the latest actual load needs."
    )
    changed: bool | None = Field(
        default=None,
        description="changed: the predicted load needs another architecture or node count than today's.",
    )
    time: datetime | None = Field(default=None, description="time: when it was computed (the run's time).")
