"""``TrainConfig``: the file ``foresight train --config FILE`` reads, and the torchrun-style environment.

The operator renders a ``TrainingJob`` into this file (JSON or YAML, camelCase like the CRD);
everything that differs per worker pod (rank, world size, master address) comes from the
environment instead, read once in the entry point by :meth:`DistEnv.from_environ`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from foresight.api.durations import DURATION_PATTERN
from foresight.api.trainingjob import DatasetQuality

from .errors import TrainingConfigError

__all__ = [
    "CheckpointConfig",
    "DatasetConfig",
    "DistEnv",
    "DistillationConfig",
    "DistributedConfig",
    "OutputConfig",
    "PromQLDatasetConfig",
    "PushgatewayConfig",
    "RayConfig",
    "SearchConfig",
    "SearchParameter",
    "TrainConfig",
    "load_config",
    "parse_hyperparameter",
]


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class PromQLDatasetConfig(_Model):
    """Prometheus history read at train time (``forecast`` task), as a TrainingJob's ``dataset.promql``."""

    url: str = Field(pattern=r"^https?://.+", description="url: Prometheus base URL.")
    query: str = Field(min_length=1, description="query: PromQL of the training series.")
    lookback: str = Field(default="720h", pattern=DURATION_PATTERN, description="lookback: Go duration.")
    step: str = Field(default="1h", pattern=DURATION_PATTERN, description="step: Go duration.")
    group_by: list[str] = Field(default_factory=list, description="groupBy: labels keying a series.")
    aggregation: Literal["sum", "max", "mean", "none"] = Field(
        default="none", description="aggregation: how series sharing the groupBy labels merge."
    )
    max_series: int = Field(default=1000, ge=1, description="maxSeries: most series after grouping.")


class DatasetConfig(_Model):
    """Exactly one of ``uri`` and ``promql``."""

    uri: str | None = Field(
        default=None, min_length=1, description="uri: `file:///path`, a plain path, or `s3://bucket/key`."
    )
    promql: PromQLDatasetConfig | None = Field(default=None, description="promql: Prometheus history.")
    quality: DatasetQuality | None = Field(
        default=None,
        description="quality: thresholds of the quality report computed before training "
        "(foresight.training.quality); over any of them the run fails with DataQualityFailed.",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> DatasetConfig:
        if (self.uri is None) == (self.promql is None):
            raise ValueError("dataset needs exactly one of uri and promql")
        return self


class CheckpointConfig(_Model):
    uri: str = Field(min_length=1, description="uri: where checkpoints go (a directory or `s3://` prefix).")
    every_epochs: int = Field(default=1, ge=1, description="everyEpochs: checkpoint interval in epochs.")
    keep: int = Field(default=2, ge=1, description="keep: newest checkpoints kept; older ones are deleted.")


class OutputConfig(_Model):
    uri: str = Field(min_length=1, description="uri: where the trained model's files go.")


class PushgatewayConfig(_Model):
    url: str = Field(pattern=r"^https?://", description="url: Pushgateway base URL.")
    job: str = Field(default="foresight-training", description="job: the Pushgateway job label.")
    grouping: dict[str, str] = Field(default_factory=dict, description="grouping: extra grouping labels.")


class DistributedConfig(_Model):
    backend: Literal["auto", "gloo", "nccl"] = Field(
        default="auto", description="backend: process-group backend; auto = nccl on GPU, gloo on CPU."
    )
    join_timeout_seconds: float = Field(
        default=300.0, gt=0, description="joinTimeoutSeconds: how long ranks wait for each other at start."
    )


class DistillationConfig(_Model):
    """Train the task's model as the student of a teacher model (``spec.distillation``)."""

    teacher_uri: str = Field(
        min_length=1, description="teacherUri: the teacher's model directory (path, file:// or s3://)."
    )
    teacher: str | None = Field(
        default=None, description="teacher: the teacher as the spec named it (ModelVersion or URI)."
    )
    temperature: float = Field(default=3.0, gt=0, description="temperature: softening temperature T.")
    alpha: float = Field(default=0.5, ge=0, le=1, description="alpha: weight of the distillation term.")


class SearchParameter(_Model):
    type: Literal["uniform", "loguniform", "choice", "randint"]
    min: float | None = None
    max: float | None = None
    values: list[Any] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_bounds(self) -> SearchParameter:
        if self.type == "choice":
            if not self.values:
                raise ValueError("a choice parameter needs a non-empty values list")
        elif self.min is None or self.max is None or not self.min < self.max:
            raise ValueError(f"a {self.type} parameter needs min < max, got min={self.min} max={self.max}")
        elif self.type == "loguniform" and self.min <= 0:
            raise ValueError(f"a loguniform parameter needs min > 0, got {self.min}")
        return self


class SearchConfig(_Model):
    num_samples: int = Field(default=4, ge=1, alias="trials", description="trials: configurations to try.")
    metric: str = Field(default="val_loss", description="metric: what the search optimises.")
    mode: Literal["min", "max"] = "min"
    scheduler: Literal["asha", "fifo"] = "asha"
    grace_period: int = Field(
        default=1, ge=1, description="gracePeriod: epochs before ASHA may stop a trial."
    )
    max_concurrent: int = Field(default=2, ge=1)
    space: dict[str, SearchParameter] = Field(min_length=1)


class RayConfig(_Model):
    address: str | None = Field(default=None, description="address: a Ray cluster; None = local or RayJob.")
    num_cpus: int | None = Field(default=None, ge=1, description="numCpus: CPUs of a local Ray instance.")
    temp_dir: str | None = Field(default=None, description="tempDir: Ray's session directory (local only).")
    cpus_per_trial: float = Field(default=1.0, gt=0)
    gpus_per_trial: float = Field(default=0.0, ge=0)


class TrainConfig(_Model):
    """What to train, on what, and where the results go."""

    task: str = Field(min_length=1, description="task: a built-in task (forecast, classifier, toy).")
    model: str | None = Field(default=None, description="model: architecture of the task (e.g. lstm).")
    dataset: DatasetConfig | None = None
    hyperparameters: dict[str, Any] = Field(
        default_factory=dict,
        description="hyperparameters: name -> value; learningRate, weightDecay and gradClip are the "
        "trainer's, the rest go to the task. Numbers may be strings (as in the CRD).",
    )
    epochs: int = Field(default=10, ge=1)
    batch_size: int = Field(default=64, ge=1)
    seed: int = Field(default=0, ge=0)
    checkpoint: CheckpointConfig | None = None
    output: OutputConfig | None = None
    progress_file: str | None = Field(
        default=None, description="progressFile: JSON progress for the operator."
    )
    pushgateway: PushgatewayConfig | None = None
    distributed: DistributedConfig = Field(default_factory=DistributedConfig)
    search: SearchConfig | None = None
    ray: RayConfig = Field(default_factory=RayConfig)
    distillation: DistillationConfig | None = None

    @field_validator("hyperparameters")
    @classmethod
    def _parse_numbers(cls, value: dict[str, Any]) -> dict[str, Any]:
        return {k: parse_hyperparameter(v) for k, v in value.items()}

    def with_hyperparameters(self, overrides: Mapping[str, Any]) -> TrainConfig:
        """A copy with some hyperparameters replaced (one search trial)."""
        merged = {**self.hyperparameters, **{k: parse_hyperparameter(v) for k, v in overrides.items()}}
        return self.model_copy(update={"hyperparameters": merged})


def parse_hyperparameter(value: Any) -> Any:
    """``"0.001"`` -> ``0.001``, ``"64"`` -> ``64``, ``"true"`` -> ``True``; other strings stay strings.

    The CRD carries hyperparameters as strings so that any value round-trips through YAML and
    Argo CD diffs; the runtime turns them back into numbers here, in one place.
    """
    if not isinstance(value, str):
        return value
    low = value.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(value)
    except ValueError:
        pass
    try:
        f = float(value)
    except ValueError:
        return value
    return f if math.isfinite(f) else value


def load_config(path: str | Path) -> TrainConfig:
    """Read a JSON or YAML ``TrainConfig``; errors name the file and the bad field."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise TrainingConfigError(f"cannot read training config {p}: {exc}") from exc
    try:
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise TrainingConfigError(f"training config {p} is not valid JSON/YAML: {exc}") from exc
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise TrainingConfigError(f"training config {p} is invalid: {exc}") from exc


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in a torchrun-style job (``WORLD_SIZE`` 1 = single process)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int = 29500

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> DistEnv:
        """Read ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` / ``MASTER_ADDR`` / ``MASTER_PORT``.

        An Indexed Job gives each pod ``JOB_COMPLETION_INDEX`` instead of ``RANK``; it is used
        as the rank when ``RANK`` is absent (one process per pod).
        """
        try:
            world = int(environ.get("WORLD_SIZE", "1"))
            rank_s = environ.get("RANK", environ.get("JOB_COMPLETION_INDEX", "0"))
            rank = int(rank_s)
            local = int(environ.get("LOCAL_RANK", "0"))
            port = int(environ.get("MASTER_PORT", "29500"))
        except ValueError as exc:
            raise TrainingConfigError(
                f"bad distributed environment (RANK/JOB_COMPLETION_INDEX, WORLD_SIZE, LOCAL_RANK, "
                f"MASTER_PORT must be integers): {exc}"
            ) from exc
        if world < 1 or not 0 <= rank < world:
            raise TrainingConfigError(f"rank {rank} is outside world size {world}: check RANK and WORLD_SIZE")
        return cls(
            rank=rank,
            world_size=world,
            local_rank=local,
            master_addr=environ.get("MASTER_ADDR", "127.0.0.1"),
            master_port=port,
        )
