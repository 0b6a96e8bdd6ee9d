"""The classifier service's config file and the Secrets it reads from its environment.

:class:`ClassifierConfig` is the file ``foresight serve classifier --config FILE`` reads: the
operator renders it into the ConfigMap of a ClassifierService's Deployment with
:func:`classifier_config_from_spec` (the one mapping from the API model to the file), local mode
serves the same mapping on 127.0.0.1, and a laptop user may write it by hand. Secrets never enter
it: it names the environment variables (:data:`API_KEY_ENV`, :data:`REDIS_PASSWORD_ENV`,
:data:`AUTH_TOKEN_ENV`) that the Deployment fills from the referenced Secrets. The categories and
the prompt default to the API's (:mod:`foresight.api.classifierservice`), one definition for both.
:data:`HEALTH_PATH` and :data:`STATS_PATH` are what the operator probes and reads.

Variants (issue 14): a config may list :attr:`ClassifierConfig.variants`, each a name and its own
backend (an ONNX model, or a DashScope model and prompt); the pods load every one and route each
request among them by the split in the routing file (:mod:`foresight.contract.experiment`). The
first variant is the control. Without ``variants`` the service has one unnamed variant (``""``,
the ``variant`` label outside experiments) served by :attr:`ClassifierConfig.backend`, so configs
written before variants existed keep working. :func:`classifier_config_from_spec` renders them
from :class:`VariantSource` entries, which the ABExperiment controller resolves from ModelVersions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from foresight.api.classifierservice import (
    DEFAULT_CATEGORIES,
    DEFAULT_PROMPT,
    Category,
    ClassifierServiceSpec,
)

from .experiment import ROUTING_DIR, ROUTING_FILE

__all__ = [
    "API_KEY_ENV",
    "AUTH_TOKEN_ENV",
    "DEFAULT_VARIANT",
    "FEEDBACK_PATH",
    "HEALTH_PATH",
    "REDIS_PASSWORD_ENV",
    "STATS_PATH",
    "VARIANT_NAME_PATTERN",
    "AuthConfig",
    "BackendConfig",
    "CacheConfig",
    "ClassifierConfig",
    "DashScopeConfig",
    "LimitsConfig",
    "MonitoringConfig",
    "OnnxConfig",
    "RoutingConfig",
    "VariantConfig",
    "VariantSource",
    "classifier_config_from_spec",
    "cpu_cores",
    "redis_prefix",
    "workers_for",
]

API_KEY_ENV = "DASHSCOPE_API_KEY"
"""Holds the DashScope API key (from ``spec.backend.dashscope.apiKeySecret``)."""
REDIS_PASSWORD_ENV = "FORESIGHT_REDIS_PASSWORD"
"""Holds the Redis password (from ``spec.cache.redis.passwordSecret``)."""
AUTH_TOKEN_ENV = "FORESIGHT_CLASSIFIER_TOKEN"
"""Holds the client bearer token (from ``spec.authTokenSecret``)."""
HEALTH_PATH = "/api/v1/health"
"""Readiness and liveness: 503 while the cache store is unreachable."""
STATS_PATH = "/api/v1/stats/today"
"""Today's counts (``requests``, ``hit_rate``...), which the operator copies into status."""
FEEDBACK_PATH = "/api/v1/feedback"
"""``POST {request_id, label}``: the true category of an earlier request, joined to its variant."""
DEFAULT_VARIANT = ""
"""The variant name of a service without ``variants`` (the ``variant`` label outside experiments)."""
VARIANT_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
"""Variant names, as an ABExperiment's ``variants[].name`` (a DNS label)."""


class _Model(BaseModel):
    # camelCase like the CRD (the operator copies spec fields across), snake_case accepted too.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class DashScopeConfig(_Model):
    model: str = Field(default="qwen-vl-plus", max_length=128, description="The DashScope model.")
    base_url: str | None = Field(
        default=None,
        pattern=r"^https?://.+",
        description="Override of the DashScope HTTP API base URL (e.g. `http://127.0.0.1:8080/api/v1`).",
    )
    api_key_env: str = Field(
        default=API_KEY_ENV,
        description="Environment variable holding the API key (set from a Secret).",
    )
    timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="Per LLM call; the SDK's own default is 300 s, far too long for an interactive request.",
    )
    max_retries: int = Field(default=3, ge=0, le=10, description="Retries on 429 / 5xx / timeouts.")
    backoff_seconds: float = Field(default=0.5, ge=0, le=60, description="First backoff; doubles per retry.")
    max_side: int = Field(
        default=1024,
        ge=64,
        le=8192,
        description="Images are downscaled so the long "
        "side is at most this many pixels before they are sent.",
    )
    jpeg_quality: int = Field(default=85, ge=10, le=100, description="JPEG quality of the image sent.")


class OnnxConfig(_Model):
    model_path: str = Field(min_length=1, description="Path of the `.onnx` image-classifier artifact.")
    labels: list[str] | None = Field(
        default=None,
        description="Category key per model output index; defaults to the category keys in order.",
    )
    input_size: int | None = Field(
        default=None,
        ge=8,
        le=4096,
        description="Square input side; defaults to the model's static input shape.",
    )
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    threads: int = Field(default=1, ge=1, le=64, description="ONNX Runtime intra-op threads.")


class BackendConfig(_Model):
    type: Literal["dashscope", "onnx"] = "dashscope"
    dashscope: DashScopeConfig = Field(default_factory=DashScopeConfig)
    onnx: OnnxConfig | None = None
    concurrency: int = Field(
        default=64,
        ge=1,
        le=1024,
        description="Backend calls in flight at once "
        "(threads); an LLM call mostly waits, so this bounds throughput.",
    )
    price_per_call: float = Field(
        default=0.008, ge=0, description="Estimated cost of one backend call (for the cost-saved statistic)."
    )

    @model_validator(mode="after")
    def _onnx_needs_settings(self) -> BackendConfig:
        if self.type == "onnx" and self.onnx is None:
            raise ValueError("backend.type onnx needs backend.onnx.modelPath")
        return self


class CacheConfig(_Model):
    store: Literal["sqlite", "redis"] = "sqlite"
    sqlite_path: str = Field(default="classifier.db", description="SQLite file (on a PVC in a cluster).")
    redis_url: str | None = Field(
        default=None, pattern=r"^rediss?://.+", description="`redis://host:6379/0`."
    )
    redis_password_env: str | None = Field(
        default=None, description="Environment variable holding the Redis password, if any."
    )
    redis_prefix: str = Field(
        default="foresight:classifier",
        min_length=1,
        description="Key prefix, so several services can share one Redis.",
    )
    retention_days: int = Field(default=30, ge=1, le=3650, description="Request log retention.")
    lru_size: int = Field(
        default=10000,
        ge=0,
        le=10_000_000,
        description="In-process LRU entries in front of the store (0 disables it).",
    )

    @model_validator(mode="after")
    def _redis_needs_url(self) -> CacheConfig:
        if self.store == "redis" and not self.redis_url:
            raise ValueError("cache.store redis needs cache.redisUrl")
        return self


class LimitsConfig(_Model):
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, description="Larger uploads get 413.")
    max_pixels: int = Field(
        default=40_000_000,
        ge=64,
        description="Decompression-bomb guard: images with more pixels get 413 before they are decoded.",
    )


class AuthConfig(_Model):
    token_env: str | None = Field(
        default=None,
        description="Environment variable holding the bearer "
        "token clients must send; unset means no client auth.",
    )


class VariantConfig(_Model):
    """One variant the pods load: a name and its own backend (and, for DashScope, its own prompt)."""

    name: str = Field(pattern=VARIANT_NAME_PATTERN, max_length=63, description="The variant's name.")
    backend: BackendConfig = Field(description="Who classifies for this variant.")
    prompt: str | None = Field(
        default=None,
        min_length=1,
        description="This variant's prompt (DashScope); default: the service's `prompt`.",
    )


class RoutingConfig(_Model):
    file: str = Field(
        default=f"{ROUTING_DIR}/{ROUTING_FILE}",
        min_length=1,
        description="The routing file (the ABExperiment's split); absent: every request goes to the control.",
    )
    poll_seconds: float = Field(
        default=2.0,
        gt=0,
        le=3600,
        description="How often the file's modification time is checked (a change applies without restart).",
    )


class MonitoringConfig(_Model):
    """Prediction drift: the categories served per variant in a recent window against a baseline."""

    drift_window_hours: int = Field(
        default=1, ge=1, le=168, description="The recent window, in hours (the current hour included)."
    )
    drift_baseline_hours: int = Field(
        default=168, ge=1, le=24 * 90, description="The baseline: this many hours before the recent window."
    )
    drift_min_samples: int = Field(
        default=100,
        ge=1,
        description="Answers each window needs before a drift score is exported (fewer: no score, not 0).",
    )
    refresh_seconds: float = Field(
        default=60.0, gt=0, le=3600, description="How long a computed drift score is reused."
    )


class ClassifierConfig(_Model):
    categories: list[Category] = Field(default_factory=lambda: list(DEFAULT_CATEGORIES), min_length=2)
    fallback_category: str = Field(
        default="other", description="Where unknown answers go; must be a category key."
    )
    prompt: str = Field(
        default=DEFAULT_PROMPT, min_length=1, description="`{categories}` is replaced by the category keys."
    )
    backend: BackendConfig = Field(
        default_factory=BackendConfig, description="The backend when `variants` is empty."
    )
    variants: list[VariantConfig] = Field(
        default_factory=list,
        max_length=8,
        description="Variants served side by side (the first is the control); empty: one unnamed "
        "variant served by `backend`.",
    )
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    deadline_seconds: float = Field(
        default=20.0,
        gt=0,
        le=600,
        description="The most one classify request may take, every backend retry and backoff included.",
    )
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Server processes; they share the cache store.",
    )
    flush_seconds: float = Field(
        default=0.25,
        gt=0,
        le=60,
        description="How often request events are written to the store and the metrics (in batches).",
    )
    timezone: str = Field(default="UTC", description="IANA zone that defines 'today' for statistics.")
    host: str = "0.0.0.0"
    port: int = Field(default=8000, ge=0, le=65535)

    @model_validator(mode="after")
    def _categories_consistent(self) -> ClassifierConfig:
        keys = [c.key for c in self.categories]
        if len(set(keys)) != len(keys):
            raise ValueError(f"category keys must be unique, got {keys}")
        if self.fallback_category not in keys:
            raise ValueError(
                f"fallbackCategory {self.fallback_category!r} is not one of the categories {keys}"
            )
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must be unique, got {names}")
        return self

    def render_prompt(self, prompt: str | None = None) -> str:
        """``prompt`` (default: the service's) with ``{categories}`` replaced by the keys and labels."""
        listing = ", ".join(f"{c.key} ({c.en} / {c.zh})" for c in self.categories)
        return (prompt or self.prompt).replace("{categories}", listing)

    def category(self, key: str) -> Category:
        for c in self.categories:
            if c.key == key:
                return c
        raise KeyError(key)

    def served_variants(self) -> list[tuple[str, BackendConfig, str]]:
        """``(name, backend, rendered prompt)`` of every variant, the control first; one unnamed
        (:data:`DEFAULT_VARIANT`) variant on ``backend`` when ``variants`` is empty."""
        if not self.variants:
            return [(DEFAULT_VARIANT, self.backend, self.render_prompt())]
        return [(v.name, v.backend, self.render_prompt(v.prompt)) for v in self.variants]


def redis_prefix(namespace: str, name: str) -> str:
    """The Redis key prefix of one ClassifierService: several services may share one Redis."""
    return f"foresight:classifier:{namespace}:{name}"


_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_SUFFIX = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


def cpu_cores(quantity: str) -> float:
    """A Kubernetes CPU quantity (``"500m"``, ``"2"``) in cores."""
    m = _QUANTITY.match(quantity.strip())
    if m is None:
        raise ValueError(f"not a Kubernetes quantity: {quantity!r}")
    unit = m.group(2) or ""
    return float(m.group(1)) * (_BINARY.get(unit) or _SUFFIX.get(unit) or 1.0)


def workers_for(spec: ClassifierServiceSpec) -> int:
    """Server processes per pod: ``spec.workers``, else one per whole CPU of the pod's limit (its
    request when no limit is set), at least 1 and at most 64."""
    if spec.workers is not None:
        return spec.workers
    cpu = cpu_cores(spec.resources.cpu_limit or spec.resources.cpu)
    return max(1, min(64, math.floor(cpu + 1e-9)))


@dataclass(frozen=True)
class VariantSource:
    """One variant for :func:`classifier_config_from_spec`: its name and where its model is.

    ``onnx_model_path`` (the ``.onnx`` file as the pods see it, e.g. a ModelVersion's artifact on a
    mounted claim) makes an ONNX variant. Without it the variant is a DashScope one, on the spec's
    ``backend.dashscope`` settings (key, base URL, timeouts, price) with ``dashscope_model`` and
    ``prompt`` in place of the spec's model and prompt when given.
    """

    name: str
    onnx_model_path: str | None = None
    dashscope_model: str | None = None
    prompt: str | None = None


def _dashscope_backend(spec: ClassifierServiceSpec, model: str | None = None) -> dict[str, Any]:
    ds = spec.backend.dashscope
    if ds is None:
        raise ValueError("spec.backend.dashscope is required for a DashScope backend")
    return {
        "type": "dashscope",
        "dashscope": {
            "model": model or ds.model,
            "base_url": ds.base_url,
            "api_key_env": API_KEY_ENV,
            "timeout_seconds": float(ds.timeout_seconds),
            "max_retries": ds.max_retries,
        },
        "price_per_call": ds.price_per_call,
    }


def _onnx_backend(model_path: str) -> dict[str, Any]:
    # A local model costs no API fee.
    return {"type": "onnx", "onnx": {"model_path": model_path}, "price_per_call": 0.0}


def _variant(spec: ClassifierServiceSpec, source: VariantSource) -> dict[str, Any]:
    if source.onnx_model_path is not None:
        backend = _onnx_backend(source.onnx_model_path)
    elif spec.backend.dashscope is not None:
        backend = _dashscope_backend(spec, source.dashscope_model)
    else:
        raise ValueError(
            f"variant {source.name!r} has no ONNX model path and the spec has no backend.dashscope to "
            "serve it with: give the ModelVersion's ONNX artifact"
        )
    out: dict[str, Any] = {"name": source.name, "backend": backend}
    if source.prompt is not None:
        out["prompt"] = source.prompt
    return out


def classifier_config_from_spec(
    spec: ClassifierServiceSpec,
    *,
    namespace: str,
    name: str,
    sqlite_path: str,
    host: str,
    port: int | None = None,
    onnx_model_path: str | None = None,
    variants: Sequence[VariantSource] = (),
    routing_file: str | None = None,
) -> ClassifierConfig:
    """The classifier config for ``spec``.

    ``sqlite_path``: the cache file (on the PVC in a cluster); ``host`` / ``port``: where to bind
    (``port`` defaults to ``spec.port``); ``onnx_model_path``: the ``.onnx`` file of the ModelVersion
    named in ``spec.backend.onnx`` (required for that backend unless ``variants`` has an ONNX one;
    the caller resolves it);
    ``variants``: the variants to serve side by side, the control first (an ABExperiment's, resolved
    by the caller; empty: the spec's backend alone); ``routing_file``: where the split is read
    (default :data:`~foresight.contract.experiment.ROUTING_DIR` / ``ROUTING_FILE``, the mount).
    """
    if spec.backend.type == "dashscope":
        backend = _dashscope_backend(spec)
    else:
        # With variants, `backend` is not served; the control's model stands in when none is given.
        model_path = onnx_model_path or next((v.onnx_model_path for v in variants if v.onnx_model_path), None)
        if model_path is None:
            raise ValueError("backend.type onnx needs the path of the ModelVersion's ONNX artifact")
        backend = _onnx_backend(model_path)
    c = spec.cache
    cache: dict[str, Any] = {
        "store": c.store,
        "sqlite_path": sqlite_path,
        "retention_days": c.retention_days,
        "lru_size": c.lru_size,
        "redis_prefix": redis_prefix(namespace, name),
    }
    if c.store == "redis":
        if c.redis is None:
            raise ValueError("spec.cache.redis is required with cache.store redis")
        cache["redis_url"] = c.redis.url
        if c.redis.password_secret is not None:
            cache["redis_password_env"] = REDIS_PASSWORD_ENV
    data: dict[str, Any] = {
        "categories": [cat.model_dump() for cat in spec.categories],
        "fallback_category": "other",  # the CRD's CEL rule makes `other` a category
        "prompt": spec.prompt,
        "backend": backend,
        "variants": [_variant(spec, v) for v in variants],
        "cache": cache,
        "limits": {
            "max_upload_bytes": spec.limits.max_upload_bytes,
            "max_pixels": spec.limits.max_pixels,
        },
        "auth": {"token_env": AUTH_TOKEN_ENV if spec.auth_token_secret is not None else None},
        "deadline_seconds": float(spec.deadline_seconds),
        "workers": workers_for(spec),
        "host": host,
        "port": spec.port if port is None else port,
    }
    if routing_file is not None:
        data["routing"] = {"file": routing_file}
    return ClassifierConfig.model_validate(data)
