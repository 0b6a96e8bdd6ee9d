"""TrainingJob: train a model on Kubernetes (one pod, torch DDP workers, or Ray) and leave a ModelVersion.

Seed 002: datasets in object storage, GPU workers, Ray Tune searches, checkpoints that survive pod
loss. Anchors: Kubeflow Trainer's TrainJob and PyTorchJob ``runPolicy``, KubeRay's RayJob.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from .meta import (
    LABEL_NAME_PATTERN,
    ApiModel,
    Duration,
    ImageOverride,
    KindInfo,
    Placement,
    Resources,
    RunPolicy,
    StatusBase,
    StoreRef,
    cel,
    column,
    ready_columns,
)

__all__ = ["TRAINING_JOB", "TrainingJobSpec", "TrainingJobStatus"]


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
    UNKNOWN_TASK = "UnknownTask"
    UNSUPPORTED_DATASET = "UnsupportedDataset"
    RAY_JOB_FAILED = "RayJobFailed"


LabelName = Annotated[str, Field(pattern=LABEL_NAME_PATTERN, max_length=63)]


class PromQLDataset(ApiModel):
    """Prometheus history, read at train time into a panel (built-in ``forecast`` task only).

    The range ends when the training pod starts and reaches ``lookback`` back; the query goes
    through the same ingestion as a ForecastTask's source (step-aligned, chunked, gaps kept as
    missing values).
    """

    url: str = Field(pattern=r"^https?://.+", max_length=512, description="url: Prometheus base URL.")
    query: str = Field(min_length=1, max_length=4096, description="query: PromQL of the training series.")
    lookback: Duration = Field(default="720h", description="lookback: history to train on.")
    step: Duration = Field(default="1h", description="step: resolution.")
    group_by: list[LabelName] = Field(
        default_factory=list,
        max_length=8,
        description="groupBy: labels that identify one training series (as a ForecastTask's "
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


class Dataset(ApiModel):
    """The training data: an object-store / PVC URI or a PromQL query (exactly one)."""

    uri: str | None = Field(
        default=None,
        max_length=1024,
        pattern=r"^(s3|pvc|file)://.+",
        description="uri: `s3://bucket/key`, `pvc://claim/path` or `file:///path` (local "
        "mode); a `.npz` panel for forecast, a folder of `<label>/*.png` for "
        "classifier.",
    )
    promql: PromQLDataset | None = Field(
        default=None, description="promql: train on Prometheus history (the forecast task)."
    )
    store: StoreRef | None = Field(
        default=None, description="store: endpoint and credentials for an s3:// uri."
    )


class SearchParameter(ApiModel):
    type: Literal["uniform", "loguniform", "choice", "randint"] = Field(description="type: distribution.")
    min: float | None = Field(default=None, description="min: lower bound (uniform, loguniform, randint).")
    max: float | None = Field(default=None, description="max: upper bound (uniform, loguniform, randint).")
    values: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="values: the options (choice); numbers are written as strings and parsed.",
    )


class SearchSpec(ApiModel):
    """Hyper-parameter search with Ray Tune."""

    trials: int = Field(default=4, ge=1, le=1000, description="trials: configurations to try.")
    metric: str = Field(default="val_loss", max_length=63, description="metric: what to optimise.")
    mode: Literal["min", "max"] = Field(default="min", description="mode: minimise or maximise metric.")
    scheduler: Literal["asha", "fifo"] = Field(
        default="asha", description="scheduler: ASHA stops poor trials early; fifo runs each to the end."
    )
    grace_period: int = Field(
        default=1, ge=1, description="gracePeriod: epochs before ASHA may stop a trial."
    )
    max_concurrent: int = Field(default=2, ge=1, le=256, description="maxConcurrent: trials at once.")
    space: dict[str, SearchParameter] = Field(
        description="space: hyperparameter name -> distribution.", min_length=1, max_length=32
    )


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
        description="joinTimeoutSeconds: how long "
        "workers wait for each other before failing with WorkerJoinTimeout.",
    )


class CheckpointSpec(ApiModel):
    every_epochs: int = Field(default=1, ge=1, description="everyEpochs: checkpoint interval.")
    keep: int = Field(default=2, ge=1, le=100, description="keep: newest checkpoints kept.")


class TrainingMetrics(ApiModel):
    """Training progress as Prometheus metrics."""

    pushgateway_url: str | None = Field(
        default=None,
        max_length=512,
        pattern=r"^https?://.+",
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
        description="model: architecture for built-in "
        "tasks (forecast: lstm, gru, transformer; classifier: cnn).",
    )
    command: list[str] = Field(
        default_factory=list, max_length=64, description="command: entrypoint of a custom task."
    )
    args: list[str] = Field(
        default_factory=list, max_length=256, description="args: arguments of a custom task."
    )
    dataset: Dataset | None = Field(default=None, description="dataset: the training data.")
    hyperparameters: dict[str, str] = Field(
        default_factory=dict,
        description='hyperparameters: name -> value (numbers as strings, e.g. learningRate: "0.001").',
    )
    epochs: int = Field(default=10, ge=1, le=100000, description="epochs: training epochs.")
    seed: int = Field(default=0, ge=0, description="seed: makes training deterministic.")
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
    output: OutputModel | None = Field(default=None, description="output: the ModelVersion to create.")
    metrics: TrainingMetrics = Field(
        default_factory=TrainingMetrics, description="metrics: per-epoch progress pushed to Prometheus."
    )
    run_policy: RunPolicy = Field(
        default_factory=RunPolicy, description="runPolicy: retries, deadline, TTL, suspend."
    )


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
