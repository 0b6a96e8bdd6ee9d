"""ModelVersion: a verified, versioned model artifact, optionally optimised, with a declared stage.

Anchors: MLflow's registry (aliases over stages: here one ``Production`` version per model name,
declared by the user in the spec; the operator never writes a spec, so Argo CD never fights it) and
seed 004's optimisation toolkit (ONNX export with parity checks, int8 quantisation, pruning).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field

from .meta import (
    DNS_SUBDOMAIN_PATTERN,
    NO_DOT_DOT,
    ApiModel,
    ImageOverride,
    KindInfo,
    Resources,
    StatusBase,
    StoreRef,
    column,
    ready_columns,
)
from .rules import SET, cel, field_rules, immutable

__all__ = ["MODEL_VERSION", "Distilled", "ModelVersionSpec", "ModelVersionStatus", "Stage"]


class Stage(StrEnum):
    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"


class ModelVersionPhase(StrEnum):
    PENDING = "Pending"
    VERIFYING = "Verifying"
    READY = "Ready"
    FAILED = "Failed"


class ModelVersionReason(StrEnum):
    VERIFIED = "Verified"
    VERIFYING = "Verifying"
    CHECKSUM_MISMATCH = "ChecksumMismatch"
    ARTIFACT_NOT_FOUND = "ArtifactNotFound"
    LOAD_FAILED = "LoadFailed"
    PARITY_FAILED = "ParityFailed"
    PRODUCTION_CONFLICT = "ProductionConflict"
    NO_CONFLICT = "NoConflict"
    VERIFY_FAILED = "VerifyFailed"
    """The verify Job ended without a verdict (a crash: its log tail is the message)."""


class Artifact(ApiModel):
    uri: Annotated[str, NO_DOT_DOT] = Field(
        max_length=1024,
        pattern=r"^(s3|pvc|file)://.+",
        description="uri: where the artifact lives (`s3://`, `pvc://` or `file://`, no `..` segments); "
        "immutable (a new artifact is a new ModelVersion).",
        json_schema_extra=immutable("artifact.uri"),
    )
    sha256: str | None = Field(
        default=None,
        pattern=r"^[a-f0-9]{64}$",
        description="sha256: expected checksum; verified before the version becomes Ready.",
    )
    store: StoreRef | None = Field(
        default=None, description="store: endpoint and credentials for s3:// uris."
    )


class Lineage(ApiModel):
    training_job: str | None = Field(
        default=None,
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description="trainingJob: the TrainingJob that produced it.",
    )
    forecast_task: str | None = Field(
        default=None,
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description="forecastTask: the ForecastTask that produced it.",
    )
    dataset: str | None = Field(default=None, max_length=1024, description="dataset: the training data.")
    parent: str | None = Field(
        default=None,
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description="parent: the ModelVersion it was derived from (fine-tuned, distilled).",
    )


class Prune(ApiModel):
    sparsity: float = Field(
        gt=0, lt=1, description="sparsity: fraction of weights zeroed (global magnitude)."
    )


class Optimize(ApiModel):
    onnx: bool = Field(default=True, description="onnx: export to ONNX and check output parity.")
    quantize: bool = Field(
        default=False,
        description="quantize: ONNX Runtime dynamic int8 quantisation (measured: it is not always faster).",
    )
    prune: Prune | None = Field(default=None, description="prune: magnitude pruning.")
    parity_threshold: float = Field(
        default=1e-4,
        gt=0,
        le=1,
        description="parityThreshold: largest allowed max-abs difference between ONNX and eager outputs.",
    )
    batch_sizes: Annotated[list[Annotated[int, Field(ge=1, le=1_000_000)]], SET] = Field(
        default_factory=lambda: [1, 1000],
        min_length=1,
        max_length=4,
        description="batchSizes: batch sizes latency is measured at, each once, each at least 1.",
    )


class ModelVersionSpec(ApiModel):
    model_name: str = Field(
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        max_length=50,
        description="modelName: the model family; one Production version per name.",
        json_schema_extra=immutable("modelName"),
    )
    version: str = Field(
        min_length=1,
        max_length=63,
        pattern=r"^[A-Za-z0-9][-A-Za-z0-9_.]*$",
        description="version: e.g. `3` or `2026-11-22.1`.",
        json_schema_extra=immutable("version"),
    )
    framework: Literal["torch", "onnx", "statsforecast", "custom"] = Field(
        default="torch", description="framework: artifact format."
    )
    artifact: Artifact = Field(
        description="artifact: the model file or folder.",
        json_schema_extra=field_rules(
            cel(
                "!has(oldSelf.sha256) || (has(self.sha256) && self.sha256 == oldSelf.sha256)",
                "artifact.sha256 is immutable once set (a new artifact is a new ModelVersion)",
                field_path=".sha256",
            )
        ),
    )
    stage: Stage = Field(
        default=Stage.NONE,
        description="stage: None, Staging, Production or Archived. Only "
        "one version per modelName may be Production: promote by setting it here (GitOps), "
        "roll back by setting it on the previous version.",
    )
    metrics: dict[str, float] = Field(default_factory=dict, description="metrics: evaluation metrics.")
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="config: architecture and training config.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    lineage: Lineage = Field(default_factory=Lineage, description="lineage: where it came from.")
    optimize: Optimize | None = Field(default=None, description="optimize: ONNX / int8 / pruning.")
    description: str = Field(default="", max_length=4096, description="description: free text.")
    resources: Resources = Field(default_factory=Resources, description="resources: of the verify job.")
    runtime: ImageOverride = Field(default_factory=ImageOverride, description="runtime: image override.")


MODEL_VERSION_RULES = (
    cel(
        "self.framework != 'statsforecast' || !has(self.optimize)",
        "optimize applies to torch and onnx models",
        field_path=".optimize",
    ),
)


class OptimizedArtifact(ApiModel):
    uri: str = Field(description="uri: the optimised artifact.")
    sha256: str = Field(description="sha256: its checksum.")
    size_bytes: int = Field(ge=0, description="sizeBytes: its size.")


class Latency(ApiModel):
    runtime: str = Field(description="runtime: eager, onnx or onnx-int8.")
    batch_size: int = Field(ge=1, description="batchSize: batch measured.")
    p50_ms: float = Field(ge=0, description="p50Ms: median latency.")
    p99_ms: float = Field(ge=0, description="p99Ms: 99th percentile latency.")


class Distilled(ApiModel):
    """How a distilled student compares with its teacher (seed 004: knowledge distillation).

    Measured by the distillation run on its validation set and CPU (eager torch, batch 1), and
    read from the artifact's ``distillation.json`` by the verify step.
    """

    teacher: str = Field(description="teacher: the teacher's ModelVersion name or artifact URI.")
    temperature: float = Field(description="temperature: the softening temperature T used.")
    alpha: float = Field(description="alpha: the weight of the distillation term used.")
    teacher_parameters: int = Field(ge=0, description="teacherParameters: the teacher's parameter count.")
    student_parameters: int = Field(ge=0, description="studentParameters: the student's parameter count.")
    teacher_size_bytes: int = Field(ge=0, description="teacherSizeBytes: the teacher's saved weights.")
    student_size_bytes: int = Field(ge=0, description="studentSizeBytes: the student's saved weights.")
    size_ratio: float = Field(ge=0, description="sizeRatio: student size / teacher size.")
    teacher_p50_ms: float = Field(ge=0, description="teacherP50Ms: the teacher's median latency, batch 1.")
    student_p50_ms: float = Field(ge=0, description="studentP50Ms: the student's median latency, batch 1.")
    speedup: float = Field(ge=0, description="speedup: teacher latency / student latency.")
    teacher_accuracy: float = Field(ge=0, le=1, description="teacherAccuracy: on the validation set.")
    student_accuracy: float = Field(ge=0, le=1, description="studentAccuracy: on the validation set.")
    accuracy_change: float = Field(
        ge=-1, le=1, description="accuracyChange: student accuracy - teacher accuracy."
    )


class ModelVersionStatus(StatusBase):
    phase: ModelVersionPhase | None = Field(
        default=None,
        description="phase: a one-word summary for `kubectl get`.",
    )
    verified: bool = Field(default=False, description="verified: checksum matched, it loaded and ran.")
    checksum: str | None = Field(default=None, description="checksum: sha256 of the artifact.")
    size_bytes: int | None = Field(default=None, ge=0, description="sizeBytes: artifact size.")
    production: bool = Field(
        default=False, description="production: this is its modelName's Production version."
    )
    onnx: OptimizedArtifact | None = Field(default=None, description="onnx: the ONNX export.")
    int8: OptimizedArtifact | None = Field(default=None, description="int8: the quantised ONNX model.")
    parity_max_abs_diff: float | None = Field(default=None, description="parityMaxAbsDiff: ONNX vs eager.")
    sparsity: float | None = Field(default=None, description="sparsity: reached by pruning.")
    latency: list[Latency] = Field(default_factory=list, description="latency: measured latencies.")
    distillation: Distilled | None = Field(
        default=None,
        description="distillation: a distilled student's size, latency and accuracy against its teacher.",
    )
    verified_time: datetime | None = Field(default=None, description="verifiedTime: when verification ended.")


MODEL_VERSION = KindInfo(
    kind="ModelVersion",
    plural="modelversions",
    short_names=("mv",),
    printer_columns=ready_columns(
        column("Model", ".spec.modelName"),
        column("Version", ".spec.version"),
        column("Stage", ".spec.stage"),
        column("Size", ".status.sizeBytes", "integer", priority=1),
    ),
    spec_model=ModelVersionSpec,
    status_model=ModelVersionStatus,
    description="ModelVersion is a verified, versioned model artifact with an optional ONNX / int8 / pruned "
    "optimisation and a declared stage (one Production version per model name).",
    spec_validations=MODEL_VERSION_RULES,
)
