"""ForecastTask: learn from Prometheus history and keep forecasts flowing back into Prometheus.

Seed 001's story: storage quotas that sit at 85-95% all the time, where bursts of writes and deletes
make ``predict_linear`` useless. A ForecastTask names the PromQL history, how to group it (user,
group, storage type, cluster...), the model, the horizon and the threshold; the operator runs it on
a schedule and the forecasts, bounds and time-to-threshold become Prometheus series.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import ConfigDict, Field, field_validator, model_validator

from .durations import duration_seconds, format_duration
from .meta import (
    LABEL_NAME_PATTERN,
    ApiModel,
    Duration,
    HttpUrl,
    ImageOverride,
    KindInfo,
    LabelName,
    Placement,
    Query,
    Resources,
    SecretKeyRef,
    StatusBase,
    StoreRef,
    column,
    ready_columns,
)
from .recommendation import RecommendationSpec, RecommendationStatus
from .rules import SET, Rule, at_least, cel, field_error, field_rules, keyed_by

__all__ = [
    "FORECAST_TASK",
    "MAX_PARALLELISM",
    "OUTPUT_LABELS",
    "DataQuality",
    "ForecastConditionType",
    "ForecastTaskSpec",
    "ForecastTaskStatus",
    "ModelType",
    "ReadBudget",
    "ShardStatus",
    "ShardsStatus",
    "ValueRange",
    "output_horizons",
]


class ModelType(StrEnum):
    AUTO = "auto"
    LSTM = "lstm"
    GRU = "gru"
    TRANSFORMER = "transformer"
    NAIVE = "naive"
    SEASONAL_NAIVE = "seasonal_naive"
    LINEAR = "linear"
    ETS = "ets"
    THETA = "theta"


class ForecastPhase(StrEnum):
    PENDING = "Pending"
    TRAINING = "Training"
    PREDICTING = "Predicting"
    READY = "Ready"
    FAILED = "Failed"
    SUSPENDED = "Suspended"


class ForecastReason(StrEnum):
    """Reasons of ForecastTask conditions, beyond the shared ones."""

    PROMQL_ERROR = "PromQLError"
    NO_SERIES = "NoSeries"
    DUPLICATE_SERIES = "DuplicateSeries"
    """Two series of the query are one series after grouping: fix groupBy, the aggregation or the query."""
    INSUFFICIENT_HISTORY = "InsufficientHistory"
    TOO_MANY_SERIES = "TooManySeries"
    PROMETHEUS_UNAVAILABLE = "PrometheusUnavailable"
    PUSHGATEWAY_UNAVAILABLE = "PushgatewayUnavailable"
    RUN_FAILED = "RunFailed"
    FORECASTS_WRITTEN = "ForecastsWritten"
    UNSUPPORTED_KIND = "UnsupportedKind"
    INVALID_SCHEDULE = "InvalidSchedule"
    WAITING = "Waiting"
    """``Progressing=False``: no run under way; the message says when the next one is due."""
    BLOCKED = "Blocked"
    """``Progressing=False``: the last run failed on bad input; no run starts until the spec changes."""
    PLANNED = "Planned"
    """A sharded run's plan pod stored the plan; the shards run next."""
    SHARDS_FAILED = "ShardsFailed"
    """``Degraded=True``: some shards of the last sharded run failed (their series kept no fresh
    forecasts); the others wrote theirs, so the task stays Ready."""
    OUTPUT_TOO_LARGE = "OutputTooLarge"
    """``Ready=False``: the estimated output is too big for ``output.mode`` (what to do in the message)."""
    READ_BUDGET_EXCEEDED = "ReadBudgetExceeded"
    """Reading the history cannot stay within ``source.readBudget`` (what to do in the message)."""
    SOURCE_DATA_STALE = "SourceDataStale"
    """``StaleData=True``: some series' newest sample is several steps old; no forecast for them."""
    DATA_CURRENT = "DataCurrent"
    """``StaleData=False``: every series of the last run had recent samples."""


class ForecastConditionType(StrEnum):
    """Condition types of a ForecastTask beyond the shared ones (``Ready``, ``Progressing``, ``Degraded``)."""

    STALE_DATA = "StaleData"
    """True while the last run found series whose newest sample is several steps old (which series,
    since when and what to do are in the message); False when every series was current."""


OUTPUT_LABELS = frozenset(
    {"task", "namespace", "horizon", "bound", "metric", "model", "kind", "shard", "job", "instance"}
)
"""Labels on Foresight's output series that are not the series' own: Foresight writes the first
eight (``shard``: the shard of a sharded run, in its Pushgateway group), the Pushgateway (or the
scrape) sets ``job`` and ``instance``. A series label of the same name is written as
``series_<name>``."""

# Durations, each with the minimum below which a task cannot work (documented in its field).
Step = Annotated[Duration, at_least("1s", "a step of 0s divides by zero, and Prometheus resolves seconds")]
Horizon = Annotated[Duration, at_least("1s", "a horizon shorter than a step forecasts nothing")]


class ReadBudget(ApiModel):
    """How much one read of the history may ask of Prometheus (every count is per query)."""

    samples_per_query: int = Field(
        default=1_000_000,
        ge=10_000,
        le=50_000_000,
        description="samplesPerQuery: series x points one query may return, at least 10,000 and at most "
        "Prometheus' default query.max-samples (50,000,000). Reads are split into batches of series "
        "and step-aligned time chunks to stay under it; 1,000,000 is about 30 MB of JSON per answer.",
    )
    concurrency: int = Field(
        default=4,
        ge=1,
        le=64,
        description="concurrency: queries in flight at once per pod (per shard of a sharded run), 1 to 64; "
        "parallelism x concurrency is what the task can ask of Prometheus at once.",
    )


class Covariate(ApiModel):
    """An extra PromQL series used as a model input (e.g. write rate next to usage)."""

    name: str = Field(
        pattern=LABEL_NAME_PATTERN, max_length=63, description="name: the input's name, unique in covariates."
    )
    query: Query = Field(
        description="query: PromQL returning the same groupBy labels as the source query (not blank).",
    )


UNIT_PATTERN = r"^[A-Za-z%][A-Za-z0-9_/%.-]*$"


class ValueRange(ApiModel):
    """The values the forecast quantity can take (a usage or a count is never negative; a
    percentage stays within 0-100)."""

    model_config = ConfigDict(
        json_schema_extra=field_rules(
            cel("!has(self.min) || !has(self.max) || self.min < self.max", "min must be less than max")
        )
    )

    min: float | None = Field(
        default=None,
        description="min: the smallest value the quantity can take (0 for bytes, counts, rates); "
        "inputs below it are flagged in status (dataQuality), and forecasts and bounds never go below it.",
    )
    max: float | None = Field(
        default=None,
        description="max: the largest value the quantity can take (100 for a percentage, 1 for a "
        "ratio); inputs above it are flagged, forecasts and bounds never go above it. More than min.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> ValueRange:
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise field_error(f"min ({self.min:g}) must be less than max ({self.max:g})")
        return self


class PrometheusSource(ApiModel):
    """The history to learn from."""

    url: HttpUrl = Field(
        default="http://prometheus-operated.monitoring.svc:9090",
        description="url: the Prometheus HTTP API base URL (http or https).",
    )
    query: Query = Field(
        description='query: PromQL of the series to forecast, e.g. `storage_used_bytes{cluster=~"gpu-.*"}` '
        "(not blank).",
    )
    lookback: Annotated[Duration, at_least("1h", "models learn nothing from less history")] = Field(
        default="720h",
        description="lookback: how much history to learn from (a Go duration: `720h` is 30 days), at "
        "least 1h and at least limits.minHistoryPoints steps.",
    )
    step: Step = Field(
        default="1h",
        description="step: the resolution of the history and of the forecasts, at least 1s.",
    )
    group_by: Annotated[list[LabelName], SET] = Field(
        default_factory=list,
        max_length=8,
        description="groupBy: labels that "
        "identify a series (e.g. user, group, storage_type, cluster), each once; other labels "
        "are aggregated with `aggregation`. Empty with aggregation `none` keeps every series with "
        "all its labels; empty with `sum` / `max` / `mean` merges everything into one series. Not "
        "a name starting with `__` (Prometheus' own). A label that Foresight's output series carry "
        "themselves (task, namespace, horizon, bound, metric, model, kind, shard, job, instance) is written "
        "as `series_<name>` on the forecasts (e.g. `series_namespace`), so both stay readable.",
    )
    aggregation: Literal["sum", "max", "mean", "none"] = Field(
        default="sum", description="aggregation: how series that share the groupBy labels merge."
    )
    counter: bool = Field(
        default=False,
        description="counter: the query returns a counter; it is turned "
        "into per-step increases (resets handled). Prefer rate() in the query.",
    )
    covariates: Annotated[list[Covariate], keyed_by("name")] = Field(
        default_factory=list,
        max_length=8,
        description="covariates: extra PromQL inputs to the models, one per name.",
    )
    bearer_token_secret: SecretKeyRef | None = Field(
        default=None, description="bearerTokenSecret: a token for a Prometheus behind authentication."
    )
    read_budget: ReadBudget = Field(
        default_factory=ReadBudget,
        description="readBudget: the sample budget of every range query (a single pod reads in time "
        "chunks under it) and, in a sharded run (spec.parallelism > 1), the concurrency of each shard's "
        "reads of its own series, in batches and time chunks under the budget.",
    )
    unit: str | None = Field(
        default=None,
        max_length=32,
        pattern=UNIT_PATTERN,
        description="unit: the metric's unit, used where values are printed (`foresight run --local`, "
        "the demo) and as the dashboard's axis unit: `bytes` (printed in KiB, MiB...), `seconds`, "
        "`percent` (0-100), `ratio` (0-1, printed as a percentage), or any other unit name, printed "
        "after the number (e.g. `requests`); unset prints plain numbers.",
    )
    value_range: ValueRange | None = Field(
        default=None,
        description="valueRange: the values the quantity can take, e.g. `{min: 0}` for usage or "
        "counts; inputs outside it are flagged, forecasts and bounds are clipped to it.",
    )


class DayNight(ApiModel):
    day_start_hour: int = Field(default=8, ge=0, le=23, description="dayStartHour: first hour of the day.")
    day_end_hour: int = Field(default=20, ge=1, le=24, description="dayEndHour: first hour of the night.")


class Calendar(ApiModel):
    """Calendar features given to the models.

    Time of day matters for quotas: writes by day, cleanups at night.
    """

    hour_of_day: bool = Field(default=True, description="hourOfDay: use the hour of day.")
    day_of_week: bool = Field(default=True, description="dayOfWeek: use the day of week.")
    day_night: DayNight | None = Field(default_factory=DayNight, description="dayNight: a day/night flag.")
    time_zone: str = Field(
        default="UTC",
        min_length=1,
        max_length=64,
        description="timeZone: IANA zone of the calendar features, e.g. `Asia/Shanghai`; a zone the "
        "time zone database knows (checked by `foresight validate` and the operator, not by CEL).",
    )

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise field_error(
                f"unknown time zone {value!r}: use an IANA name such as UTC, Europe/Berlin or Asia/Shanghai"
            ) from exc
        return value


class Hyperparameters(ApiModel):
    """Knobs of the neural models (the baselines ignore them)."""

    input_window: int = Field(
        default=168,
        ge=4,
        le=10000,
        description="inputWindow: history steps one prediction sees (168 = a week of hours).",
    )
    hidden_size: int = Field(default=64, ge=4, le=1024, description="hiddenSize: width of the network.")
    layers: int = Field(default=2, ge=1, le=8, description="layers: depth of the network.")
    epochs: int = Field(
        default=30, ge=1, le=1000, description="epochs: most epochs (early stopping may end sooner)."
    )
    windows_per_epoch: int = Field(
        default=20000,
        ge=100,
        le=10_000_000,
        description="windowsPerEpoch: "
        "training windows sampled per epoch, so cost does not grow with history.",
    )
    batch_size: int = Field(default=256, ge=1, le=65536, description="batchSize: windows per step.")
    learning_rate: float = Field(default=1e-3, gt=0, le=1, description="learningRate: AdamW learning rate.")
    patience: int = Field(
        default=5,
        ge=1,
        le=100,
        description="patience: epochs without validation improvement before stopping.",
    )


class ModelSpec(ApiModel):
    model_config = ConfigDict(
        json_schema_extra=field_rules(
            cel(
                "self.type != 'auto' || size(self.candidates) > 0",
                "type auto needs at least one candidate to compare",
                field_path=".candidates",
            )
        )
    )

    type: ModelType = Field(
        default=ModelType.AUTO,
        description="type: `auto` backtests the candidates and "
        "picks per series (never worse than the best baseline on the task's own data); "
        "or one of lstm, gru, transformer, naive, seasonal_naive, linear "
        "(= Prometheus predict_linear), ets, theta.",
    )
    candidates: Annotated[
        list[ModelType],
        SET,
        Rule(
            "self.all(c, c != 'auto')",
            "auto picks among the candidates and cannot be one of them",
            lambda v: ModelType.AUTO not in v,
        ),
    ] = Field(
        default_factory=lambda: [
            ModelType.NAIVE,
            ModelType.SEASONAL_NAIVE,
            ModelType.LINEAR,
            ModelType.ETS,
            ModelType.THETA,
            ModelType.LSTM,
        ],
        max_length=9,
        description="candidates: the models `auto` compares, each once (not auto itself).",
    )
    hyperparameters: Hyperparameters = Field(
        default_factory=Hyperparameters, description="hyperparameters: neural model knobs."
    )
    seed: int = Field(default=0, ge=0, le=2**32 - 1, description="seed: makes training deterministic.")
    backtest_folds: int = Field(
        default=3, ge=1, le=20, description="backtestFolds: rolling origins of the backtest."
    )
    interval_level: float = Field(
        default=0.8, gt=0, lt=1, description="intervalLevel: coverage of the lower / upper bounds."
    )
    training_sample_series: int = Field(
        default=2000,
        ge=10,
        le=100_000,
        description="trainingSampleSeries: sharded runs (spec.parallelism > 1) train the neural models "
        "once, in one pod (with resources.gpu), on this many series drawn evenly across the shards (the "
        "same ones every run, by the hash of their labels); the shards then fit their statistical "
        "models per series and predict with the saved network. 10 to 100,000.",
    )


class Capacity(ApiModel):
    """The limit a series is measured against: a constant for all, or a PromQL query per series."""

    value: float | None = Field(default=None, gt=0, description="value: one limit for every series.")
    query: Query | None = Field(
        default=None,
        description="query: PromQL giving each series "
        "its own limit (same groupBy labels), e.g. `storage_quota_bytes` (not blank).",
    )


ALERT_RULE_PATTERN = r"^(point|upper|probability>=(0?\.[0-9]*[1-9][0-9]*|1(\.0*)?))$"


class AlertSpec(ApiModel):
    """The exhaustion alert: which rule decides it, chosen on the task's own backtest by default."""

    within: Duration | None = Field(
        default=None,
        description='within: the alert\'s window ("will be exhausted within"); at least one step and '
        "within horizon. Default: 6h, or the horizon when it is shorter.",
    )
    min_precision: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description="minPrecision: the rule chosen is the one with the highest backtested recall among "
        "those whose backtested precision reaches this (more than 0, at most 1).",
    )
    rule: str | None = Field(
        default=None,
        pattern=ALERT_RULE_PATTERN,
        max_length=32,
        description="rule: your choice instead of the backtest's: `point` (the forecast reaches the "
        "threshold within the window), `upper` (the band's upper edge does) or `probability>=P` (the "
        "exhaustion probability within the window is at least P, 0 < P <= 1).",
    )


class Threshold(ApiModel):
    """When a series counts as exhausted: capacity x ratio."""

    capacity: Capacity = Field(description="capacity: the limit (a constant or a per-series query).")
    ratio: float = Field(
        default=0.95,
        gt=0,
        le=1,
        description="ratio: fraction of capacity that counts as exhausted (0.95 = 95% of quota), "
        "more than 0 and at most 1.",
    )
    alert: AlertSpec = Field(
        default_factory=AlertSpec, description="alert: the rule behind foresight_exhaustion_alert."
    )


class Schedule(ApiModel):
    """When to retrain and when to predict."""

    retrain_every: Annotated[
        Duration,
        at_least("10m", "a training run takes minutes; more often, runs would queue up back to back"),
    ] = Field(default="24h", description="retrainEvery: retrain interval, at least 10m.")
    predict_every: Annotated[
        Duration, at_least("10s", "each prediction is a pod, and starting one alone takes seconds")
    ] = Field(
        default="15m",
        description="predictEvery: predict (and write back) interval, with the latest trained model; "
        "at least 10s.",
    )
    cron: str | None = Field(
        default=None,
        max_length=128,
        pattern=r"^(@(hourly|daily|weekly|monthly)|(\S+\s+){4}\S+)$",
        description="cron: predict on this cron schedule instead of predictEvery (five fields, UTC; "
        "checked by `foresight validate` and the operator).",
    )
    max_catch_up: int = Field(
        default=1,
        ge=0,
        le=10,
        description="maxCatchUp: after downtime, at most this "
        "many missed runs are made up (1 = run once, now).",
    )

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is not None and not croniter.is_valid(value):
            raise field_error(
                f"{value!r} is not a cron schedule: five fields, minute hour day-of-month month day-of-week, "
                "e.g. `*/30 * * * *`"
            )
        return value


class OutputSpec(ApiModel):
    """Where forecasts go."""

    mode: Literal["pushgateway", "scrape", "none"] = Field(
        default="pushgateway",
        description="mode: `pushgateway` pushes "
        "to a Pushgateway (one group per task, deleted with the task); `scrape` keeps the same gauges "
        "in the task's artifact store and the operator runs a Deployment and Service `<task>-forecasts` "
        "(`foresight serve forecasts`, port 8080, `/metrics`) whose Service carries the "
        "`prometheus.io/scrape`, `prometheus.io/port` and `prometheus.io/path` annotations, so a "
        "Prometheus with the usual annotation-based kubernetes_sd job finds it (`honor_labels: true` "
        "there keeps the written `namespace` label as is); a pvc:// store then needs a claim that "
        "pod can mount next to the runs' pods (ReadWriteMany, or the same node); "
        "`none` writes status only.",
    )
    pushgateway_url: HttpUrl = Field(
        default="http://prometheus-pushgateway.monitoring.svc:9091",
        description="pushgatewayUrl: Pushgateway base URL.",
    )
    horizons: Annotated[list[Horizon], SET] = Field(
        default_factory=lambda: ["1h", "6h", "24h"],
        min_length=1,
        max_length=16,
        description="horizons: steps ahead written as gauges at now (`horizon` label), each once, "
        "each a whole number of source.step within horizon. To write every step, set everyStep.",
    )
    every_step: bool = Field(
        default=False,
        description="everyStep: write every step from one source.step up to horizon (e.g. 24 gauges "
        "per series and family for an hourly 24h forecast), in addition to horizons; each output "
        "horizon adds gauges per series, so mind the Pushgateway's size (output.mode scrape scales).",
    )
    remote_write_url: HttpUrl | None = Field(
        default=None,
        description="remoteWriteUrl: opt-in. Also remote-write the whole trajectory with future timestamps. "
        "Only for a Prometheus with `storage.tsdb.out_of_order_time_window` set: future samples "
        "make a default Prometheus reject every later scrape until real time catches up.",
    )


class Limits(ApiModel):
    max_series: int = Field(
        default=2000,
        ge=1,
        le=1_000_000,
        description="maxSeries: refuse queries returning more series (add groupBy or aggregation).",
    )
    min_history_points: int = Field(
        default=48,
        ge=2,
        le=1_000_000,
        description="minHistoryPoints: fewest non-missing points a series needs; source.lookback must "
        "hold this many steps.",
    )


MAX_PARALLELISM = 100
"""Shards of one run at most: status lists every shard, and 100 shards of 10,000 series (1M
series) is beyond what one Prometheus serves to one task anyway."""


class ForecastTaskSpec(ApiModel):
    """spec: what to forecast, how and how often."""

    source: PrometheusSource = Field(description="source: the Prometheus history.")
    calendar: Calendar = Field(default_factory=Calendar, description="calendar: calendar features.")
    model: ModelSpec = Field(default_factory=ModelSpec, description="model: which model and how to train it.")
    horizon: Horizon = Field(
        default="24h",
        description="horizon: how far ahead to forecast; at least source.step, shorter than the lookback.",
    )
    threshold: Threshold | None = Field(default=None, description="threshold: enables time-to-threshold.")
    schedule: Schedule = Field(default_factory=Schedule, description="schedule: retrain and predict cadence.")
    output: OutputSpec = Field(default_factory=OutputSpec, description="output: where forecasts go.")
    limits: Limits = Field(default_factory=Limits, description="limits: guards against bad queries.")
    parallelism: int = Field(
        default=1,
        ge=1,
        le=MAX_PARALLELISM,
        description="parallelism: shards of each run, 1 to 100. 1 (the default) runs each run in one pod. "
        "More: a plan pod lists the series (without their history) and assigns each to a shard by a "
        "stable hash of its labels (a series stays on its shard as the set grows), then one Indexed "
        "Job runs the shards, each reading and forecasting only its series and writing its own "
        "output (its own Pushgateway group, `shard` label; in scrape mode its own endpoint). A failed "
        "shard is retried on its own and does not fail the others. Size it at about 5,000-10,000 "
        "series per shard (see the README).",
    )
    resources: Resources = Field(
        default_factory=Resources,
        description="resources: of each run's pod (each shard's; a sharded run's GPU goes to its plan "
        "pod, which trains the neural models, and not to the shards).",
    )
    placement: Placement = Field(default_factory=Placement, description="placement: of each run's pod.")
    runtime: ImageOverride = Field(default_factory=ImageOverride, description="runtime: image override.")
    artifacts: StoreRef = Field(default_factory=StoreRef, description="artifacts: where trained models go.")
    suspend: bool = Field(default=False, description="suspend: true stops scheduling runs.")
    recommendation: RecommendationSpec | None = Field(
        default=None,
        description="recommendation: each run also recommends a database architecture for the predicted "
        "load from an active model library (ModelLibrary), next to the one today's load needs.",
    )


FORECAST_SPEC_RULES = (
    cel(
        "!has(self.threshold) || !has(self.threshold.alert) || !has(self.threshold.alert.within)"
        " || (duration(self.threshold.alert.within) <= duration(self.horizon)"
        " && duration(self.threshold.alert.within) >= duration(self.source.step))",
        "threshold.alert.within must be at least source.step and at most horizon",
        field_path=".threshold.alert.within",
    ),
    cel(
        "duration(self.horizon) < duration(self.source.lookback)",
        "horizon must be shorter than source.lookback",
        field_path=".horizon",
    ),
    cel(
        "duration(self.source.step) <= duration(self.horizon)",
        "source.step must not be longer than horizon",
        field_path=".source.step",
    ),
    cel(
        "self.output.horizons.all(h, duration(h) <= duration(self.horizon))",
        "every output.horizons entry must be within horizon",
        field_path=".output.horizons",
    ),
    cel(
        "self.output.horizons.all(h, duration(h) >= duration(self.source.step)"
        " && duration(h).getSeconds() % duration(self.source.step).getSeconds() == 0)",
        "every output.horizons entry must be a whole number of source.step (a forecast has one value "
        "per step)",
        field_path=".output.horizons",
    ),
    cel(
        "duration(self.source.lookback).getSeconds()"
        " >= duration(self.source.step).getSeconds() * self.limits.minHistoryPoints",
        "source.lookback must hold at least limits.minHistoryPoints steps of source.step: lengthen "
        "the lookback, shorten the step or lower limits.minHistoryPoints",
        field_path=".source.lookback",
    ),
    cel(
        "!has(self.threshold) || (has(self.threshold.capacity.value) != has(self.threshold.capacity.query))",
        "threshold.capacity needs exactly one of value or query",
        field_path=".threshold.capacity",
    ),
    cel(
        "!has(self.calendar.dayNight)"
        " || self.calendar.dayNight.dayStartHour < self.calendar.dayNight.dayEndHour",
        "calendar.dayNight.dayStartHour must be before dayEndHour",
        field_path=".calendar.dayNight",
    ),
    cel(
        "!has(self.recommendation) || !has(self.recommendation.horizon)"
        " || (duration(self.recommendation.horizon) <= duration(self.horizon)"
        " && duration(self.recommendation.horizon).getSeconds()"
        " % duration(self.source.step).getSeconds() == 0)",
        "recommendation.horizon must be a whole number of source.step within horizon (a forecast has "
        "one value per step)",
        field_path=".recommendation.horizon",
    ),
    # A recommendation's inputs sum, max or average series across the whole task; a shard sees
    # only its own series, so each shard would recommend from a part of the load.
    cel(
        "!has(self.recommendation) || !has(self.parallelism) || self.parallelism == 1",
        "recommendation needs every series in one pod (its inputs add up series across the task): set "
        "parallelism: 1, or make the recommendation in a second ForecastTask with parallelism 1 over "
        "the series its inputs read",
        field_path=".recommendation",
    ),
)


def output_horizons(spec: ForecastTaskSpec) -> list[str]:
    """The horizons the gauges are written at, as ``horizon`` labels (``1h``, ``90m``), shortest
    first: ``output.horizons``, plus every whole step up to ``horizon`` with ``output.everyStep``."""
    step = duration_seconds(spec.source.step)
    seconds = {duration_seconds(h) for h in spec.output.horizons}
    if spec.output.every_step and step > 0:
        seconds |= {k * step for k in range(1, duration_seconds(spec.horizon) // step + 1)}
    return [format_duration(s) for s in sorted(seconds)]


class BacktestScore(ApiModel):
    model: str = Field(description="model: the model scored.")
    mase: float | None = Field(default=None, description="mase: mean absolute scaled error (season = 1 day).")
    mae: float | None = Field(default=None, description="mae: mean absolute error.")


class ShardStatus(ApiModel):
    """One shard of the last (or the running) sharded run."""

    index: int = Field(ge=0, description="index: the shard (its pod's completion index).")
    series: int = Field(default=0, ge=0, description="series: series the plan gave this shard.")
    phase: Literal["Pending", "Running", "Succeeded", "Failed"] = Field(
        default="Pending", description="phase: Pending, Running, Succeeded or Failed."
    )
    attempts: int = Field(default=0, ge=0, description="attempts: pods started for this shard.")
    message: str | None = Field(
        default=None, max_length=400, description="message: why it failed, or what it wrote."
    )


class ShardsStatus(ApiModel):
    """The shards of one sharded run: counts, not label sets."""

    plan_id: str | None = Field(default=None, description="planId: the plan the shards ran.")
    job: str | None = Field(default=None, description="job: the Indexed Job of the shards.")
    total: int = Field(default=0, ge=0, description="total: shards of the run (spec.parallelism).")
    succeeded: int = Field(default=0, ge=0, description="succeeded: shards done.")
    failed: int = Field(default=0, ge=0, description="failed: shards that failed after their retries.")
    running: int = Field(default=0, ge=0, description="running: shards under way or waiting for a pod.")
    series: int = Field(default=0, ge=0, description="series: series in the plan, all shards.")
    series_succeeded: int = Field(
        default=0, ge=0, description="seriesSucceeded: series of the shards that succeeded."
    )
    series_failed: int = Field(default=0, ge=0, description="seriesFailed: series of the failed shards.")
    progress: str | None = Field(
        default=None, description="progress: a one-line summary for `kubectl get`, e.g. `2/3 (1 failed)`."
    )
    items: list[ShardStatus] = Field(
        default_factory=list, max_length=MAX_PARALLELISM, description="items: every shard, by index."
    )


class BandCoverage(ApiModel):
    horizon: str = Field(description="horizon: an output horizon (e.g. `6h`).")
    coverage: float | None = Field(
        default=None, ge=0, le=1, description="coverage: share of held-out actuals inside the band."
    )


class Bands(ApiModel):
    """How the bounds were calibrated and how well they held on the last backtest."""

    level: float = Field(gt=0, lt=1, description="level: the nominal coverage (model.intervalLevel).")
    coverage: list[BandCoverage] = Field(
        default_factory=list,
        description="coverage: per output horizon, measured out of sample (each backtest fold against bands "
        "calibrated on the other folds).",
    )


class AlertStatus(ApiModel):
    """The exhaustion alert in use and the evidence for it."""

    rule: str = Field(description="rule: e.g. `probability>=0.4` (see spec.threshold.alert.rule).")
    within: str = Field(description="within: the alert's window.")
    precision: float | None = Field(
        default=None, ge=0, le=1, description="precision: backtested (none: too few crossings to tell)."
    )
    recall: float | None = Field(default=None, ge=0, le=1, description="recall: backtested.")
    median_lead_seconds: float | None = Field(
        default=None, ge=0, description="medianLeadSeconds: backtested median warning before a crossing."
    )
    events: int = Field(
        default=0, ge=0, description="events: real crossings of the threshold in the backtest window."
    )
    decisions: int = Field(
        default=0,
        ge=0,
        description="decisions: alert evaluations scored (series x steps of the backtest folds, below the "
        "threshold).",
    )
    true_positives: int | None = Field(
        default=None, ge=0, description="truePositives: backtest decisions that warned of a real crossing."
    )
    false_positives: int | None = Field(
        default=None, ge=0, description="falsePositives: backtest decisions that warned of none."
    )
    false_negatives: int | None = Field(
        default=None, ge=0, description="falseNegatives: backtest decisions silent before a real crossing."
    )
    reason: str = Field(default="", description="reason: why this rule.")


class DataQuality(ApiModel):
    """status.dataQuality: what the last run found in its input, and what it did about it."""

    series: int = Field(default=0, ge=0, description="series: series the last run read.")
    missing_points: int = Field(
        default=0, ge=0, description="missingPoints: steps without a sample inside the series' own span."
    )
    late_series: int = Field(
        default=0, ge=0, description="lateSeries: series whose history starts after the lookback's start."
    )
    stale_series: int = Field(
        default=0,
        ge=0,
        description="staleSeries: series whose newest sample is several steps old (no forecast from now "
        "is written for them; condition StaleData).",
    )
    dropped_series: int = Field(
        default=0, ge=0, description="droppedSeries: series with fewer than limits.minHistoryPoints points."
    )
    out_of_range_series: int = Field(
        default=0, ge=0, description="outOfRangeSeries: series with inputs outside source.valueRange."
    )
    clipped_series: int = Field(
        default=0,
        ge=0,
        description="clippedSeries: series whose forecast or bounds were clipped to source.valueRange.",
    )
    outlier_series: int = Field(
        default=0,
        ge=0,
        description="outlierSeries: series with extreme outliers, read as missing so that they spoil "
        "no model.",
    )
    invalid_capacity_series: int = Field(
        default=0,
        ge=0,
        description="invalidCapacitySeries: series whose capacity is zero, negative or missing (no "
        "time-to-threshold for them).",
    )
    warnings: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="warnings: what was found, which series, since when and what to do, one line each.",
    )


class ForecastTaskStatus(StatusBase):
    """status: what the last runs did."""

    phase: ForecastPhase | None = Field(
        default=None,
        description="phase: a one-word summary for `kubectl get`.",
    )
    series_count: int | None = Field(default=None, ge=0, description="seriesCount: series in the last run.")
    model: str | None = Field(
        default=None,
        description="model: the model in use (per-series picks are summarised, e.g. `auto(ets:12,lstm:30)`).",
    )
    model_version: str | None = Field(default=None, description="modelVersion: the ModelVersion in use.")
    artifact_uri: str | None = Field(default=None, description="artifactUri: the trained model's artifact.")
    backtest: list[BacktestScore] = Field(
        default_factory=list,
        description="backtest: errors per model, baselines included; `auto`'s is measured on folds its "
        "choice was not made on (each fold forecast with the choice made on the folds before it).",
    )
    bands: Bands | None = Field(default=None, description="bands: calibration and measured coverage.")
    alert: AlertStatus | None = Field(default=None, description="alert: the exhaustion alert in use.")
    last_train_time: datetime | None = Field(
        default=None, description="lastTrainTime: end of the last training run."
    )
    last_predict_time: datetime | None = Field(
        default=None, description="lastPredictTime: end of the last prediction run."
    )
    next_run_time: datetime | None = Field(default=None, description="nextRunTime: when the next run starts.")
    active_run: str | None = Field(default=None, description="activeRun: the Job of the run under way.")
    runs: int = Field(default=0, ge=0, description="runs: completed runs.")
    consecutive_failures: int = Field(
        default=0, ge=0, description="consecutiveFailures: failed runs in a row."
    )
    shards: ShardsStatus | None = Field(
        default=None,
        description="shards: the last finished sharded run's shards (spec.parallelism > 1): counts, series "
        "per shard, each shard's outcome; absent once a single-pod run has finished.",
    )
    active_shards: ShardsStatus | None = Field(
        default=None,
        description="activeShards: the shards of the sharded run under way, as they go (`planning` while "
        "its plan pod runs); absent when no sharded run is under way.",
    )
    recommendation: RecommendationStatus | None = Field(
        default=None,
        description="recommendation: the last run's capacity recommendation (spec.recommendation).",
    )
    data_quality: DataQuality | None = Field(
        default=None, description="dataQuality: what the last successful run found in its input."
    )


FORECAST_TASK = KindInfo(
    kind="ForecastTask",
    plural="forecasttasks",
    short_names=("ft",),
    printer_columns=ready_columns(
        column("Series", ".status.seriesCount", "integer"),
        column("Model", ".status.model"),
        column("Shards", ".status.shards.progress", priority=1),
        column("Active-Shards", ".status.activeShards.progress", priority=1),
        column("Last-Predict", ".status.lastPredictTime", "date"),
        column("Next-Run", ".status.nextRunTime", "date", priority=1),
        column("Recommended", ".status.recommendation.predicted.architecture", priority=1),
    ),
    spec_model=ForecastTaskSpec,
    status_model=ForecastTaskStatus,
    description="ForecastTask learns from Prometheus history per group / user / storage type / cluster and "
    "time of day and writes forecasts, bounds and time-to-threshold back into Prometheus.",
    spec_validations=FORECAST_SPEC_RULES,
)
