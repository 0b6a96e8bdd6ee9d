"""The classifier service's config file and the Secrets it reads from its environment.

:class:`ClassifierConfig` is the file ``foresight serve classifier --config FILE`` reads: the
operator renders it into the ConfigMap of a ClassifierService's Deployment with
:func:`classifier_config_from_spec` (the one mapping from the API model to the file), local mode
serves the same mapping on 127.0.0.1, and a laptop user may write it by hand. Secrets never enter
it: it names the environment variables (:data:`API_KEY_ENV`, :data:`REDIS_PASSWORD_ENV`,
:data:`AUTH_TOKEN_ENV`) that the Deployment fills from the referenced Secrets. The categories and
the prompt default to the API's (:mod:`foresight.api.classifierservice`), one definition for both.
:data:`HEALTH_PATH` and :data:`STATS_PATH` are what the operator probes and reads.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from foresight.api.classifierservice import (
    DEFAULT_CATEGORIES,
    DEFAULT_PROMPT,
    Category,
    ClassifierServiceSpec,
)

__all__ = [
    "API_KEY_ENV",
    "AUTH_TOKEN_ENV",
    "HEALTH_PATH",
    "REDIS_PASSWORD_ENV",
    "STATS_PATH",
    "AuthConfig",
    "BackendConfig",
    "CacheConfig",
    "ClassifierConfig",
    "DashScopeConfig",
    "LimitsConfig",
    "OnnxConfig",
    "classifier_config_from_spec",
    "redis_prefix",
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


class ClassifierConfig(_Model):
    categories: list[Category] = Field(default_factory=lambda: list(DEFAULT_CATEGORIES), min_length=2)
    fallback_category: str = Field(
        default="other", description="Where unknown answers go; must be a category key."
    )
    prompt: str = Field(
        default=DEFAULT_PROMPT, min_length=1, description="`{categories}` is replaced by the category keys."
    )
    backend: BackendConfig = Field(default_factory=BackendConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
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
        return self

    def render_prompt(self) -> str:
        """The prompt with ``{categories}`` replaced by the keys and their labels."""
        listing = ", ".join(f"{c.key} ({c.en} / {c.zh})" for c in self.categories)
        return self.prompt.replace("{categories}", listing)

    def category(self, key: str) -> Category:
        for c in self.categories:
            if c.key == key:
                return c
        raise KeyError(key)


def redis_prefix(namespace: str, name: str) -> str:
    """The Redis key prefix of one ClassifierService: several services may share one Redis."""
    return f"foresight:classifier:{namespace}:{name}"


def classifier_config_from_spec(
    spec: ClassifierServiceSpec,
    *,
    namespace: str,
    name: str,
    sqlite_path: str,
    host: str,
    port: int | None = None,
    onnx_model_path: str | None = None,
) -> ClassifierConfig:
    """The classifier config for ``spec``.

    ``sqlite_path``: the cache file (on the PVC in a cluster); ``host`` / ``port``: where to bind
    (``port`` defaults to ``spec.port``); ``onnx_model_path``: the ``.onnx`` file of the ModelVersion
    named in ``spec.backend.onnx`` (required for that backend; the caller resolves it).
    """
    backend: dict[str, Any] = {"type": spec.backend.type}
    if spec.backend.type == "dashscope":
        ds = spec.backend.dashscope
        if ds is None:
            raise ValueError("spec.backend.dashscope is required with backend.type dashscope")
        backend["dashscope"] = {
            "model": ds.model,
            "base_url": ds.base_url,
            "api_key_env": API_KEY_ENV,
            "timeout_seconds": float(ds.timeout_seconds),
            "max_retries": ds.max_retries,
        }
        backend["price_per_call"] = ds.price_per_call
    else:
        if onnx_model_path is None:
            raise ValueError("backend.type onnx needs the path of the ModelVersion's ONNX artifact")
        backend["onnx"] = {"model_path": onnx_model_path}
        backend["price_per_call"] = 0.0  # a local model costs no API fee
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
    return ClassifierConfig.model_validate(
        {
            "categories": [cat.model_dump() for cat in spec.categories],
            "fallback_category": "other",  # the CRD's CEL rule makes `other` a category
            "prompt": spec.prompt,
            "backend": backend,
            "cache": cache,
            "limits": {
                "max_upload_bytes": spec.limits.max_upload_bytes,
                "max_pixels": spec.limits.max_pixels,
            },
            "auth": {"token_env": AUTH_TOKEN_ENV if spec.auth_token_secret is not None else None},
            "host": host,
            "port": spec.port if port is None else port,
        }
    )
