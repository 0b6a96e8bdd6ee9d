"""TrainingJob: train a model on Kubernetes (one pod, torch DDP workers, or Ray) and leave a ModelVersion.

Seed 002: datasets in object storage, GPU workers, Ray Tune searches, checkpoints that survive pod
loss. Anchors: Kubeflow Trainer's TrainJob and PyTorchJob ``runPolicy``, KubeRay's RayJob.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, field_validator

from .meta import (
    NO_DOT_DOT,
    NOT_BLANK,
    ApiModel,
    Duration,
    HttpUrl,
    ImageOverride,
    KindInfo,
    LabelName,
    Placement,
    Query,
    Resources,
    RunPolicy,
    StatusBase,
    StoreRef,
    column,
    ready_columns,
)
from .rules import SET, at_least, cel, cel_string, field_error, field_rules

__all__ = [
    "NUMERIC_HYPERPARAMETERS",
    "TRAINING_JOB",
    "DataQuality",
    "DatasetQuality",
    "Distillation",
    "TrainingJobSpec",
    "TrainingJobStatus",
    "TrainingReason",
]


class TrainingPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SUSPENDED = "Suspended"


class TrainingReason(StrEnum):
    DATASET_NOT_FOUND = "DatasetNotFound"
    BAD_CREDENTIALS = "BadCredentials"
    PROMQL_ERROR = "PromQLError"
    PROMETHEUS_UNAVAILABLE = "PrometheusUnavailable"
    CHECKPOINT_MISMATCH = "CheckpointMismatch"
    NAN_LOSS = "NaNLoss"
    WORKER_JOIN_TIMEOUT = "WorkerJoinTimeout"
    RAY_NOT_INSTALLED = "KubeRayNotInstalled"
    BACKOFF_LIMIT_EXCEEDED = "BackoffLimitExceeded"
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    DATA_QUALITY_FAILED = "DataQualityFailed"
    """The dataset quality report exceeded a ``spec.dataset.quality`` threshold (before training)."""
    HOST_LOST = "HostLost"
    """SSH mode (``foresight run --hosts``): a host dropped and the failure policy said stop."""
    UNKNOWN_TASK = "UnknownTask"
    UNSUPPORTED_DATASET = "UnsupportedDataset"
    RAY_JOB_FAILED = "RayJobFailed"
    TEACHER_NOT_FOUND = "TeacherNotFound"
    """The distillation teacher ModelVersion does not exist (yet): the job waits for it."""


@dataclass(frozen=True)
class NumericHyperparameter:
    """A hyperparameter the built-in tasks read as a number, with the range it makes sense in."""

    integer: bool
    minimum: float
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False

    @property
    def pattern(self) -> str:
        return r"^[0-9]+$" if self.integer else r"^[-+]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][-+]?[0-9]+)?$"

    def describe(self) -> str:
        kind = "a whole number" if self.integer else "a number"
        low = f"more than {self.minimum:g}" if self.exclusive_minimum else f"at least {self.minimum:g}"
        high = ""
        if self.maximum is not None:
            high = (
                f" and less than {self.maximum:g}"
                if self.exclusive_maximum
                else f" and at most {self.maximum:g}"
            )
        return f"{kind} {low}{high}"

    def cel(self, ref: str) -> str:
        """The CEL check of the string at ``ref`` (parsed with int() / double(), as it is used)."""
        value = f"int({ref})" if self.integer else f"double({ref})"
        low = f"{self.minimum:g}" if self.integer else repr(float(self.minimum))
        checks = [
            f"{ref}.matches({cel_string(self.pattern)})",
            f"{value} {'>' if self.exclusive_minimum else '>='} {low}",
        ]
        if self.maximum is not None:
            high = f"{self.maximum:g}" if self.integer else repr(float(self.maximum))
            checks.append(f"{value} {'<' if self.exclusive_maximum else '<='} {high}")
        return " && ".join(checks)

    def accepts(self, text: str) -> bool:
        if not re.fullmatch(self.pattern, text):
            return False
        value = int(text) if self.integer else float(text)
        if value < self.minimum or (self.exclusive_minimum and value == self.minimum):
            return False
        if self.maximum is None:
            return True
        return value < self.maximum or (not self.exclusive_maximum and value == self.maximum)


NUMERIC_HYPERPARAMETERS: dict[str, NumericHyperparameter] = {
    # the trainer's
    "learningRate": NumericHyperparameter(False, 0, 1, exclusive_minimum=True),
    "weightDecay": NumericHyperparameter(False, 0),
    "gradClip": NumericHyperparameter(False, 0, exclusive_minimum=True),
    # the forecast task's (as a ForecastTask's model.hyperparameters)
    "horizon": NumericHyperparameter(True, 1),
    "inputWindow": NumericHyperparameter(True, 4),
    "hiddenSize": NumericHyperparameter(True, 4),
    "layers": NumericHyperparameter(True, 1),
    "windowsPerEpoch": NumericHyperparameter(True, 1),
    "valFraction": NumericHyperparameter(False, 0, 1, exclusive_minimum=True, exclusive_maximum=True),
    "maxValWindows": NumericHyperparameter(True, 1),
    # the classifier task's
    "imageSize": NumericHyperparameter(True, 1),
    "channels": NumericHyperparameter(True, 1),
    "dropout": NumericHyperparameter(False, 0, 1, exclusive_maximum=True),
    "valEvery": NumericHyperparameter(True, 1),
}
"""Hyperparameters whose values must be numbers (they are strings in the spec, parsed by the
tasks): ``learningRate: fast`` is refused at admission instead of failing the training pod."""


def _hyperparameter_rules(
    check: Callable[[str, NumericHyperparameter], str], where: str = ""
) -> tuple[dict[str, str], ...]:
    """One CEL rule per numeric hyperparameter on a map keyed by name; ``check`` writes its test."""
    return tuple(
        cel(
            f"!has(self.{name}) || ({check(name, spec)})",
            f"{name} must be {spec.describe()}{where}",
            field_path=f".{name}",
        )
        for name, spec in NUMERIC_HYPERPARAMETERS.items()
    )


class PromQLDataset(ApiModel):
    """Prometheus history, read at train time into a panel (built-in ``forecast`` task only).

    The range ends when the training pod starts and reaches ``lookback`` back; the query goes
    through the same ingestion as a ForecastTask's source (step-aligned, chunked, gaps kept as
    missing values).
    """

    model_config = ConfigDict(
        json_schema_extra=field_rules(
            cel(
                "duration(self.lookback) > duration(self.step)",
                "lookback must be longer than step",
                field_path=".lookback",
            )
        )
    )

    url: HttpUrl = Field(description="url: Prometheus base URL (http or https).")
    query: Query = Field(description="query: PromQL of the training series (not blank).")
    lookback: Annotated[Duration, at_least("1h", "a model learns nothing from less history")] = Field(
        default="720h", description="lookback: history to train on, at least 1h and longer than step."
    )
    step: Annotated[
        Duration, at_least("1s", "a step of 0s divides by zero, and Prometheus resolves seconds")
    ] = Field(default="1h", description="step: resolution, at least 1s.")
    group_by: Annotated[list[LabelName], SET] = Field(
        default_factory=list,
        max_length=8,
        description="groupBy: labels, each once and none starting with `__`, "
        "that identify one training series (as a ForecastTask's "
        "source.groupBy: use the same labels so the trained model keys series the same way). Series "
        "sharing them merge with `aggregation`. Empty with aggregation none keeps every series "
        "under its full label set.",
    )
    aggregation: Literal["sum", "max", "mean", "none"] = Field(
        default="none",
        description="aggregation: how series sharing the groupBy labels merge; none refuses "
        "duplicates (the error names the labels to add). With an empty groupBy, sum/max/mean merge "
        "every series into one.",
    )
    max_series: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="maxSeries: refuse a query giving more series than this (after grouping).",
    )


class DatasetQuality(ApiModel):
    """Thresholds on the dataset quality report that the runtime computes before training.

    The report is always computed and shown (run output, ``status.dataQuality``); a threshold set
    here turns it into a gate: a dataset over any of them fails the job before the first epoch,
    with reason ``DataQualityFailed`` and a message naming the counts and the threshold.
    Unset thresholds are not checked.
    """

    max_missing_fraction: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="maxMissingFraction: largest allowed share of missing values: NaN points of a "
        "forecast panel, or image files that cannot be read (classifier).",
    )
    max_duplicate_fraction: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="maxDuplicateFraction: largest allowed share of duplicate rows: series identical to "
        "an earlier one (same label set, or the same value at every step), or image files with the "
        "same bytes as an earlier one (classifier).",
    )
    max_out_of_range_fraction: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="maxOutOfRangeFraction: largest allowed share of out-of-range values: infinite "
        "points and points outside [minValue, maxValue] (forecast), images smaller than minImageSize "
        "pixels on a side (classifier).",
    )
    min_value: float | None = Field(
        default=None, description="minValue: smallest valid value of a forecast panel (e.g. 0 for usage)."
    )
    max_value: float | None = Field(
        default=None, description="maxValue: largest valid value of a forecast panel (e.g. a quota)."
    )
    max_outlier_fraction: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="maxOutlierFraction: largest allowed share of anomalous points: more than 6 robust "
        "standard deviations (1.4826 x MAD) from their series' median (forecast).",
    )
    max_class_imbalance: float | None = Field(
        default=None,
        ge=1,
        description="maxClassImbalance: largest allowed ratio of the biggest class to the smallest "
        "(classifier; 1 = perfectly balanced).",
    )
    min_images_per_class: int | None = Field(
        default=None,
        ge=1,
        description="minImagesPerClass: fewest readable images a class may have (classifier).",
    )
    min_image_size: int = Field(
        default=1,
        ge=1,
        le=16384,
        description="minImageSize: images with a side shorter than this many pixels are out of range "
        "(classifier).",
    )


class Dataset(ApiModel):
    """The training data: an object-store / PVC URI or a PromQL query (exactly one)."""

    uri: Annotated[str, NO_DOT_DOT] | None = Field(
        default=None,
        max_length=1024,
        pattern=r"^(s3|pvc|file)://.+",
        description="uri: `s3://bucket/key`, `pvc://claim/path` or `file:///path` (local "
        "mode), without `..` segments; a `.npz` panel for forecast, a folder of `<label>/*.png` for "
        "classifier.",
    )
    promql: PromQLDataset | None = Field(
        default=None, description="promql: train on Prometheus history (the forecast task)."
    )
    store: StoreRef | None = Field(
        default=None, description="store: endpoint and credentials for an s3:// uri."
    )
    quality: DatasetQuality | None = Field(
        default=None,
        description="quality: thresholds that fail the job before training when the dataset quality "
        "report exceeds them (the report itself is always in status.dataQuality).",
        json_schema_extra=field_rules(
            cel(
                "!has(self.minValue) || !has(self.maxValue) || self.minValue < self.maxValue",
                "quality.minValue must be below quality.maxValue",
                field_path=".minValue",
            )
        ),
    )


class TeacherRef(ApiModel):
    """The model to distil from: a ModelVersion of the same namespace, or an artifact URI (exactly one)."""

    model_version: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        max_length=253,
        description="modelVersion: name of a ModelVersion in the TrainingJob's namespace whose artifact "
        "is a classifier model directory (a classifier TrainingJob's output).",
    )
    uri: Annotated[str, NO_DOT_DOT] | None = Field(
        default=None,
        max_length=1024,
        pattern=r"^(s3|pvc|file)://.+",
        description="uri: the teacher's model directory: `s3://`, `pvc://` or `file://` (local mode); "
        "no `..` segments.",
    )


class Distillation(ApiModel):
    """Knowledge distillation (seed 004): train this job's (smaller) model to match a teacher's outputs.

    Loss = alpha x T^2 x KL(teacher || student at temperature T) + (1 - alpha) x cross-entropy on
    the labels. Applies to the classifier task (class probabilities soften with a temperature;
    forecasting networks output quantiles, not a distribution over classes). The student's
    ModelVersion records its size, latency and accuracy against the teacher's.
    """

    teacher: TeacherRef = Field(
        description="teacher: the trained model to distil from.",
        json_schema_extra=field_rules(
            cel(
                "has(self.modelVersion) != has(self.uri)",
                "teacher needs exactly one of modelVersion or uri",
            )
        ),
    )
    temperature: float = Field(
        default=3.0, gt=0, le=100, description="temperature: softens both models' probabilities (T)."
    )
    alpha: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="alpha: weight of the distillation term; 1 - alpha weighs the label loss.",
    )


class SearchParameter(ApiModel):
    model_config = ConfigDict(
        json_schema_extra=field_rules(
            cel(
                "self.type == 'choice'"
                " || (has(self.min) && has(self.max) && double(self.min) < double(self.max))",
                "uniform, loguniform and randint need min and max, min below max",
                field_path=".min",
            ),
            cel(
                "self.type != 'loguniform' || !has(self.min) || double(self.min) > 0.0",
                "loguniform needs min more than 0 (it samples the logarithm)",
                field_path=".min",
            ),
            cel(
                "self.type != 'choice' || size(self.values) > 0", "choice needs values", field_path=".values"
            ),
        )
    )

    type: Literal["uniform", "loguniform", "choice", "randint"] = Field(description="type: distribution.")
    min: float | None = Field(
        default=None, description="min: lower bound (uniform, loguniform, randint), below max."
    )
    max: float | None = Field(default=None, description="max: upper bound (uniform, loguniform, randint).")
    values: Annotated[list[Annotated[str, Field(min_length=1, max_length=256)]], SET] = Field(
        default_factory=list,
        max_length=64,
        description="values: the options (choice), each once; numbers are written as strings and parsed.",
    )


class SearchSpec(ApiModel):
    """Hyper-parameter search with Ray Tune."""

    trials: int = Field(default=4, ge=1, le=1000, description="trials: configurations to try.")
    metric: Annotated[str, NOT_BLANK] = Field(
        default="val_loss", min_length=1, max_length=63, description="metric: what to optimise."
    )
    mode: Literal["min", "max"] = Field(default="min", description="mode: minimise or maximise metric.")
    scheduler: Literal["asha", "fifo"] = Field(
        default="asha", description="scheduler: ASHA stops poor trials early; fifo runs each to the end."
    )
    grace_period: int = Field(
        default=1, ge=1, le=100_000, description="gracePeriod: epochs before ASHA may stop a trial."
    )
    max_concurrent: int = Field(default=2, ge=1, le=256, description="maxConcurrent: trials at once.")
    space: dict[str, SearchParameter] = Field(
        description="space: hyperparameter name -> distribution; the choices of a numeric "
        "hyperparameter (learningRate, hiddenSize...) must be numbers in its range.",
        min_length=1,
        max_length=32,
        json_schema_extra=field_rules(
            *_hyperparameter_rules(
                lambda name, spec: (
                    f"self.{name}.type != 'choice' || self.{name}.values.all(v, {spec.cel('v')})"
                ),
                " (search.space choices)",
            )
        ),
    )

    @field_validator("space")
    @classmethod
    def _numeric_choices(cls, space: dict[str, SearchParameter]) -> dict[str, SearchParameter]:
        problems = [
            f"{name} must be {spec.describe()}, got {value!r}"
            for name, param in space.items()
            if (spec := NUMERIC_HYPERPARAMETERS.get(name)) is not None
            for value in param.values
            if not spec.accepts(value)
        ]
        if problems:
            raise field_error("; ".join(problems) + " (search.space choices)")
        return space


class Distributed(ApiModel):
    backend: Literal["none", "torch", "ray"] = Field(
        default="none",
        description="backend: `none` (one pod), "
        "`torch` (DDP workers: an indexed Job and a headless "
        "Service) or `ray` (a KubeRay RayJob).",
    )
    workers: int = Field(default=1, ge=1, le=256, description="workers: pods (DDP ranks or Ray workers).")
    join_timeout_seconds: int = Field(
        default=300,
        ge=10,
        le=3600,
        description="joinTimeoutSeconds: how long (10 to 3600) "
        "workers wait for each other before failing with WorkerJoinTimeout.",
    )


class CheckpointSpec(ApiModel):
    every_epochs: int = Field(default=1, ge=1, le=100_000, description="everyEpochs: checkpoint interval.")
    keep: int = Field(default=2, ge=1, le=100, description="keep: newest checkpoints kept.")


class TrainingMetrics(ApiModel):
    """Training progress as Prometheus metrics."""

    pushgateway_url: HttpUrl | None = Field(
        default=None,
        description="pushgatewayUrl: a Pushgateway that receives, after every epoch, the gauges "
        "foresight_training_epoch, _epochs, _loss, _val_loss, _eta_seconds, _epoch_seconds and "
        "foresight_training_metric{name} (job foresight-training, grouped by namespace and "
        "trainingjob: the TrainingJob's name). Unset: no push. A failed push is logged and never "
        "fails training.",
    )


class OutputModel(ApiModel):
    model_name: str = Field(
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        max_length=50,
        description="modelName: the ModelVersion family the result joins.",
    )
    create_model_version: bool = Field(
        default=True, description="createModelVersion: make a ModelVersion on success."
    )


class TrainingJobSpec(ApiModel):
    """spec: what to train, on what, where."""

    task: Literal["forecast", "classifier", "custom"] = Field(
        description="task: a built-in task (forecast: "
        "the ForecastTask models; classifier: a small "
        "image classifier) or custom (your image and "
        "command)."
    )
    model: str | None = Field(
        default=None,
        max_length=63,
        pattern=r"^[A-Za-z0-9][-A-Za-z0-9_.]*$",
        description="model: architecture for built-in "
        "tasks (forecast: lstm, gru, transformer; classifier: cnn).",
    )
    command: list[Annotated[str, Field(min_length=1, max_length=4096), NOT_BLANK]] = Field(
        default_factory=list,
        max_length=64,
        description="command: entrypoint of a custom task (no blank words).",
    )
    args: list[str] = Field(
        default_factory=list, max_length=256, description="args: arguments of a custom task."
    )
    dataset: Dataset | None = Field(default=None, description="dataset: the training data.")
    hyperparameters: dict[str, Annotated[str, Field(max_length=256)]] = Field(
        default_factory=dict,
        max_length=64,
        description='hyperparameters: name -> value (numbers as strings, e.g. learningRate: "0.001"). '
        "The ones the built-in tasks read as numbers must be numbers in their range: "
        + "; ".join(f"{name} {spec.describe()}" for name, spec in NUMERIC_HYPERPARAMETERS.items())
        + ".",
        json_schema_extra=field_rules(*_hyperparameter_rules(lambda name, spec: spec.cel(f"self.{name}"))),
    )
    epochs: int = Field(default=10, ge=1, le=100000, description="epochs: training epochs.")
    seed: int = Field(default=0, ge=0, le=2**32 - 1, description="seed: makes training deterministic.")

    distributed: Distributed = Field(
        default_factory=Distributed, description="distributed: workers and backend."
    )
    resources: Resources = Field(default_factory=Resources, description="resources: per worker pod.")
    placement: Placement = Field(default_factory=Placement, description="placement: of the worker pods.")
    runtime: ImageOverride = Field(
        default_factory=ImageOverride, description="runtime: image (required for custom tasks)."
    )
    search: SearchSpec | None = Field(default=None, description="search: a Ray Tune hyperparameter search.")
    checkpoint: CheckpointSpec = Field(default_factory=CheckpointSpec, description="checkpoint: interval.")
    artifacts: StoreRef = Field(default_factory=StoreRef, description="artifacts: checkpoints and the model.")
    distillation: Distillation | None = Field(
        default=None,
        description="distillation: train the model as a student of a teacher model (classifier task).",
    )
    output: OutputModel | None = Field(default=None, description="output: the ModelVersion to create.")
    metrics: TrainingMetrics = Field(
        default_factory=TrainingMetrics, description="metrics: per-epoch progress pushed to Prometheus."
    )
    run_policy: RunPolicy = Field(
        default_factory=RunPolicy, description="runPolicy: retries, deadline, TTL, suspend."
    )

    @field_validator("hyperparameters")
    @classmethod
    def _numbers_are_numbers(cls, values: dict[str, str]) -> dict[str, str]:
        problems = [
            f"{name} must be {spec.describe()}, written as a string, got {text!r}"
            for name, text in values.items()
            if (spec := NUMERIC_HYPERPARAMETERS.get(name)) is not None and not spec.accepts(text)
        ]
        if problems:
            raise field_error("; ".join(problems))
        return values


TRAINING_SPEC_RULES = (
    cel(
        "self.task != 'custom' || (size(self.command) > 0 && has(self.runtime.image))",
        "a custom task needs command and runtime.image",
        field_path=".command",
    ),
    cel("self.task == 'custom' || has(self.dataset)", "built-in tasks need a dataset", field_path=".dataset"),
    cel(
        "!has(self.dataset) || (has(self.dataset.uri) != has(self.dataset.promql))",
        "dataset needs exactly one of uri or promql",
        field_path=".dataset",
    ),
    cel(
        "!has(self.search) || self.distributed.backend != 'torch'",
        "search runs on Ray: use distributed.backend none or ray",
        field_path=".search",
    ),
    cel(
        "self.distributed.backend != 'none' || self.distributed.workers == 1",
        "workers > 1 needs distributed.backend torch or ray",
        field_path=".distributed.workers",
    ),
    cel(
        "!has(self.search) || self.search.gracePeriod <= self.epochs",
        "search.gracePeriod must not exceed epochs (ASHA could never stop a trial)",
        field_path=".search.gracePeriod",
    ),
    cel(
        "!has(self.distillation) || self.task == 'classifier'",
        "distillation applies to the classifier task",
        field_path=".distillation",
    ),
    cel(
        "!has(self.distillation) || !has(self.search)",
        "distillation and search cannot be combined: distil the search's best model in a second job",
        field_path=".distillation",
    ),
)


class DataQuality(ApiModel):
    """The dataset quality report of the last run (computed before training, on every run)."""

    total: int = Field(
        default=0, ge=0, description="total: data points (forecast: series x steps) or image files."
    )
    rows: int = Field(
        default=0, ge=0, description="rows: series (forecast) or image files: what duplicates are among."
    )
    missing: int = Field(default=0, ge=0, description="missing: NaN points, or unreadable image files.")
    duplicates: int = Field(default=0, ge=0, description="duplicates: rows identical to an earlier row.")
    out_of_range: int = Field(
        default=0, ge=0, description="outOfRange: values outside the valid range (see spec.dataset.quality)."
    )
    outliers: int = Field(default=0, ge=0, description="outliers: points over 6 robust standard deviations.")
    class_counts: dict[str, int] = Field(
        default_factory=dict, description="classCounts: readable images per class (classifier)."
    )
    imbalance: float | None = Field(
        default=None, ge=1, description="imbalance: biggest class / smallest class (classifier)."
    )
    passed: bool = Field(default=True, description="passed: no threshold of spec.dataset.quality exceeded.")
    failures: list[str] = Field(
        default_factory=list, max_length=16, description="failures: each threshold exceeded, with the counts."
    )


class Progress(ApiModel):
    epoch: int = Field(default=0, ge=0, description="epoch: epochs done.")
    epochs: int = Field(default=0, ge=0, description="epochs: epochs in all.")
    metrics: dict[str, float] = Field(default_factory=dict, description="metrics: latest metrics.")
    eta_seconds: int | None = Field(default=None, ge=0, description="etaSeconds: estimated time left.")


class Trial(ApiModel):
    id: str = Field(description="id: trial id.")
    config: dict[str, str] = Field(default_factory=dict, description="config: the hyperparameters tried.")
    metric: float | None = Field(default=None, description="metric: the final value of search.metric.")
    status: str = Field(default="", description="status: TERMINATED, ERROR, STOPPED (ASHA) ...")


class TrainingJobStatus(StatusBase):
    phase: TrainingPhase | None = Field(
        default=None,
        description="phase: a one-word summary for `kubectl get`.",
    )
    progress: Progress = Field(default_factory=Progress, description="progress: epochs and metrics.")
    trials: list[Trial] = Field(default_factory=list, max_length=1000, description="trials: search trials.")
    best_trial: Trial | None = Field(default=None, description="bestTrial: the best search trial.")
    best_metrics: dict[str, float] = Field(default_factory=dict, description="bestMetrics: final metrics.")
    restarts: int = Field(default=0, ge=0, description="restarts: pods that failed and were retried.")
    resumed_from_epoch: int | None = Field(
        default=None, ge=0, description="resumedFromEpoch: the checkpoint epoch the last pod resumed from."
    )
    model_version: str | None = Field(default=None, description="modelVersion: the ModelVersion produced.")
    data_quality: DataQuality | None = Field(
        default=None, description="dataQuality: the dataset quality report of the last run."
    )
    artifact_uri: str | None = Field(default=None, description="artifactUri: the trained model.")
    start_time: datetime | None = Field(default=None, description="startTime: when training started.")
    completion_time: datetime | None = Field(default=None, description="completionTime: when it ended.")


TRAINING_JOB = KindInfo(
    kind="TrainingJob",
    plural="trainingjobs",
    short_names=("tj",),
    printer_columns=ready_columns(
        column("Epoch", ".status.progress.epoch", "integer"),
        column("Model-Version", ".status.modelVersion"),
        column("Restarts", ".status.restarts", "integer", priority=1),
    ),
    spec_model=TrainingJobSpec,
    status_model=TrainingJobStatus,
    description="TrainingJob trains a model in one pod, torch DDP workers or Ray, with checkpoints and "
    "optional Ray Tune search, and produces a ModelVersion.",
    spec_validations=TRAINING_SPEC_RULES,
)
