"""ClassifierService: the LLM-backed image classifier as a managed, cached, observable service.

Seed 003: photos classified into eight categories by DashScope's ``qwen-vl-plus`` (or a local ONNX
model), a SHA-256 result cache so no image is paid for twice (failures are never cached), a hash
pre-check that saves the upload, daily statistics and a small admin page.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from .meta import (
    DNS_SUBDOMAIN_PATTERN,
    NOT_BLANK,
    ApiModel,
    HttpUrl,
    ImageOverride,
    KindInfo,
    Placement,
    PositiveQuantity,
    Resources,
    SecretKeyRef,
    StatusBase,
    column,
    ready_columns,
)
from .rules import cel, keyed_by, matches

__all__ = ["CLASSIFIER_SERVICE", "DEFAULT_CATEGORIES", "DEFAULT_PROMPT", "Category", "ClassifierServiceSpec"]


class ClassifierPhase(StrEnum):
    PENDING = "Pending"
    DEPLOYING = "Deploying"
    RUNNING = "Running"
    STOPPED = "Stopped"
    FAILED = "Failed"


class ClassifierReason(StrEnum):
    DEPLOYMENT_NOT_READY = "DeploymentNotReady"
    AVAILABLE = "Available"
    MODEL_VERSION_NOT_READY = "ModelVersionNotReady"
    UNSUPPORTED_ARTIFACT = "UnsupportedArtifact"
    """The ModelVersion has no ONNX artifact on a PVC the pods can mount."""
    SCALED_TO_ZERO = "ScaledToZero"


class Category(ApiModel):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=63, description="key: what the API returns.")
    zh: Annotated[str, NOT_BLANK] = Field(min_length=1, max_length=63, description="zh: Chinese label.")
    en: Annotated[str, NOT_BLANK] = Field(min_length=1, max_length=63, description="en: English label.")


DEFAULT_CATEGORIES: tuple[Category, ...] = (
    Category(key="social_activities", zh="社交活动", en="Social activities"),
    Category(key="pets", zh="宠物", en="Pets"),
    Category(key="single_person", zh="单人照", en="Single person"),
    Category(key="foods", zh="美食", en="Food"),
    Category(key="travel_scenery", zh="旅行风景", en="Travel scenery"),
    Category(key="screenshot", zh="截图", en="Screenshot"),
    Category(key="idcard", zh="证件", en="ID card"),
    Category(key="other", zh="其他", en="Other"),
)

DEFAULT_PROMPT = (
    "Classify this image into exactly one of these categories and answer with the category key only: "
    "{categories}. If none fits, answer other."
)


class DashScopeBackend(ApiModel):
    model: str = Field(
        default="qwen-vl-plus", max_length=128, pattern=r"^\S+$", description="model: the DashScope model."
    )
    api_key_secret: SecretKeyRef = Field(
        description="apiKeySecret: the Secret key holding the DashScope API "
        "key (passed to the pods as an environment variable)."
    )
    base_url: HttpUrl | None = Field(
        default=None,
        description="baseUrl: override the DashScope API base URL.",
    )
    timeout_seconds: int = Field(
        default=30, ge=1, le=600, description="timeoutSeconds: per LLM call, 1 to 600."
    )
    max_retries: int = Field(
        default=3, ge=0, le=10, description="maxRetries: retries on 429 / 5xx with backoff."
    )
    price_per_call: float = Field(
        default=0.008,
        ge=0,
        le=1000,
        description="pricePerCall: estimated cost of one call (for the cost-saved statistic), in yuan.",
    )


class OnnxBackend(ApiModel):
    model_version: str = Field(
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        max_length=253,
        description="modelVersion: a Ready ModelVersion with an ONNX artifact.",
    )


class Backend(ApiModel):
    type: Literal["dashscope", "onnx"] = Field(default="dashscope", description="type: dashscope or onnx.")
    dashscope: DashScopeBackend | None = Field(
        default=None, description="dashscope: settings of the dashscope backend."
    )
    onnx: OnnxBackend | None = Field(default=None, description="onnx: settings of the onnx backend.")


class RedisCache(ApiModel):
    url: str = Field(
        pattern=r"^rediss?://[^\s/?#]+([/?#]\S*)?$",
        max_length=512,
        description="url: `redis://host:6379/0` (or `rediss://` for TLS).",
    )
    password_secret: SecretKeyRef | None = Field(
        default=None, description="passwordSecret: the Redis password."
    )


class Cache(ApiModel):
    store: Literal["sqlite", "redis"] = Field(
        default="sqlite",
        description="store: sqlite on a PVC (one replica) or a shared redis (several replicas).",
    )
    size: PositiveQuantity = Field(default="1Gi", description="size: PVC size for sqlite, more than 0.")
    storage_class_name: str | None = Field(
        default=None,
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description="storageClassName: of the PVC.",
    )
    redis: RedisCache | None = Field(default=None, description="redis: the shared Redis.")
    retention_days: int = Field(
        default=30, ge=1, le=3650, description="retentionDays: request log retention."
    )
    lru_size: int = Field(
        default=10000,
        ge=0,
        le=10_000_000,
        description="lruSize: in-process LRU entries in front of the store.",
    )


class UploadLimits(ApiModel):
    max_upload_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, le=1024**3, description="maxUploadBytes: larger uploads get 413."
    )
    max_pixels: int = Field(
        default=40_000_000, ge=1024, le=10_000_000_000, description="maxPixels: decompression-bomb guard."
    )


class Autoscaling(ApiModel):
    min_replicas: int = Field(default=1, ge=1, le=1000, description="minReplicas: the floor.")
    max_replicas: int = Field(default=4, ge=1, le=1000, description="maxReplicas: the ceiling.")
    target_cpu_utilization: int = Field(
        default=70, ge=1, le=100, description="targetCpuUtilization: percent of the CPU request, 1 to 100."
    )


class ClassifierServiceSpec(ApiModel):
    replicas: int = Field(
        default=1, ge=0, le=1000, description="replicas: serving pods (ignored with autoscaling)."
    )
    backend: Backend = Field(description="backend: who classifies.")
    categories: Annotated[list[Category], keyed_by("key")] = Field(
        default_factory=lambda: list(DEFAULT_CATEGORIES),
        min_length=2,
        max_length=64,
        description="categories: the answer set, one per key; defaults to seed 003's eight.",
    )
    prompt: Annotated[
        str,
        NOT_BLANK,
        matches(
            r"\{categories\}",
            "must contain the `{categories}` placeholder, which is replaced by the category keys: "
            "without it the model is never told which keys to answer with",
        ),
    ] = Field(
        default=DEFAULT_PROMPT,
        min_length=1,
        max_length=8192,
        description="prompt: the instruction; it must contain `{categories}`, which is replaced by the "
        "category keys and labels.",
    )
    cache: Cache = Field(default_factory=Cache, description="cache: result cache and statistics store.")
    limits: UploadLimits = Field(default_factory=UploadLimits, description="limits: upload guards.")
    auth_token_secret: SecretKeyRef | None = Field(
        default=None, description="authTokenSecret: clients must send `Authorization: Bearer <token>`."
    )
    autoscaling: Autoscaling | None = Field(default=None, description="autoscaling: an HPA on CPU.")
    port: int = Field(default=8000, ge=1024, le=65535, description="port: the HTTP port.")
    deadline_seconds: int = Field(
        default=20,
        ge=1,
        le=600,
        description="deadlineSeconds: the most one classify request may take, every backend retry and "
        "backoff included, 1 to 600 (default 20: well under a client's patience). A backend call never "
        "runs past it (its timeout is cut to what is left); past it the client gets 502 upstream_timeout.",
    )
    workers: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="workers: server processes per pod, 1 to 64; unset: one per whole CPU of the pod "
        "(resources.cpuLimit when set, else resources.cpu), at least 1. They share the cache store.",
    )
    resources: Resources = Field(default_factory=Resources, description="resources: per pod.")
    placement: Placement = Field(default_factory=Placement, description="placement: of the pods.")
    runtime: ImageOverride = Field(default_factory=ImageOverride, description="runtime: image override.")


CLASSIFIER_RULES = (
    cel(
        "self.backend.type != 'dashscope' || has(self.backend.dashscope)",
        "backend.type dashscope needs backend.dashscope (with apiKeySecret)",
        field_path=".backend.dashscope",
    ),
    cel(
        "self.backend.type != 'onnx' || has(self.backend.onnx)",
        "backend.type onnx needs backend.onnx.modelVersion",
        field_path=".backend.onnx",
    ),
    cel(
        "self.cache.store != 'redis' || has(self.cache.redis)",
        "cache.store redis needs cache.redis.url",
        field_path=".cache.redis",
    ),
    cel(
        "self.cache.store != 'sqlite' || (self.replicas <= 1 && !has(self.autoscaling))",
        "sqlite is one file on one PVC: use cache.store redis for more than one replica or autoscaling",
        field_path=".cache.store",
    ),
    cel(
        "!has(self.autoscaling) || self.autoscaling.minReplicas <= self.autoscaling.maxReplicas",
        "autoscaling.minReplicas must not exceed maxReplicas",
        field_path=".autoscaling",
    ),
    cel(
        "self.categories.exists(c, c.key == 'other')",
        "categories must include `other` (unknown answers map to it)",
        field_path=".categories",
    ),
)


class ClassifierServiceStatus(StatusBase):
    phase: ClassifierPhase | None = Field(
        default=None,
        description="phase: a one-word summary for `kubectl get`.",
    )
    replicas: int = Field(default=0, ge=0, description="replicas: pods that exist.")
    ready_replicas: int = Field(default=0, ge=0, description="readyReplicas: pods ready to serve.")
    endpoint: str | None = Field(default=None, description="endpoint: in-cluster URL of the service.")
    cache_hit_rate: float | None = Field(default=None, ge=0, le=1, description="cacheHitRate: today's.")
    requests_today: int | None = Field(default=None, ge=0, description="requestsToday: today's requests.")


CLASSIFIER_SERVICE = KindInfo(
    kind="ClassifierService",
    plural="classifierservices",
    short_names=("cs",),
    printer_columns=ready_columns(
        column("Replicas", ".status.readyReplicas", "integer"),
        column("Endpoint", ".status.endpoint"),
        column("Hit-Rate", ".status.cacheHitRate", "number", priority=1),
    ),
    spec_model=ClassifierServiceSpec,
    status_model=ClassifierServiceStatus,
    description="ClassifierService runs the cached, LLM-backed (or ONNX) image classifier as a Deployment "
    "and Service.",
    spec_validations=CLASSIFIER_RULES,
)
