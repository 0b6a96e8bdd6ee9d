"""ClassifierConfig: everything one classifier process needs, loaded from a YAML or JSON file.

The operator renders this file into a ConfigMap from a ClassifierService spec; a laptop user writes
it by hand. Secrets are never in it: the file names the environment variables that hold them
(filled from Kubernetes Secrets by the Deployment), and only the entry point reads them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

# A category, seed 003's eight and the default prompt are the ClassifierService API's: one
# definition for the spec's defaults and for a config written by hand.
from foresight.api.classifierservice import DEFAULT_CATEGORIES, DEFAULT_PROMPT, Category

from .errors import ConfigError

__all__ = [
    "DEFAULT_CATEGORIES",
    "DEFAULT_PROMPT",
    "AuthConfig",
    "BackendConfig",
    "CacheConfig",
    "Category",
    "ClassifierConfig",
    "DashScopeConfig",
    "LimitsConfig",
    "OnnxConfig",
    "load_config",
]


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
        default="DASHSCOPE_API_KEY",
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


def load_config(path: str | Path) -> ClassifierConfig:
    """Load a ClassifierConfig from a YAML or JSON file; raises ConfigError naming the file and field."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read classifier config {p}: {exc}") from exc
    try:
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"classifier config {p} is not valid YAML/JSON: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"classifier config {p} must be a mapping, got {type(data).__name__}")
    try:
        return ClassifierConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"classifier config {p} is invalid: fix these fields:\n{exc}") from exc
