"""A ClassifierService spec as a classifier config, and ``foresight run -f FILE --local`` for that kind.

:func:`classifier_config_from_spec` is the one mapping from the API model
(:class:`~foresight.api.classifierservice.ClassifierServiceSpec`) to the file the service reads
(:class:`~foresight.serving.classifier.config.ClassifierConfig`). The operator renders it into
the ConfigMap of a ClassifierService's Deployment; local mode serves it on 127.0.0.1 with the
same code path. Secrets never enter the config: it names the environment variables
(:data:`API_KEY_ENV`, :data:`REDIS_PASSWORD_ENV`, :data:`AUTH_TOKEN_ENV`) that the Deployment fills
from the referenced Secrets and that a laptop user exports by hand.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from foresight.api.classifierservice import ClassifierServiceSpec

from .classifier.config import ClassifierConfig

__all__ = [
    "API_KEY_ENV",
    "AUTH_TOKEN_ENV",
    "REDIS_PASSWORD_ENV",
    "ServiceFile",
    "ServiceFileError",
    "classifier_config_from_spec",
    "is_classifier_service_file",
    "load_classifier_service",
    "local_config",
    "main_serve_local",
    "redis_prefix",
]

API_KEY_ENV = "DASHSCOPE_API_KEY"
"""Holds the DashScope API key (from ``spec.backend.dashscope.apiKeySecret``)."""
REDIS_PASSWORD_ENV = "FORESIGHT_REDIS_PASSWORD"
"""Holds the Redis password (from ``spec.cache.redis.passwordSecret``)."""
AUTH_TOKEN_ENV = "FORESIGHT_CLASSIFIER_TOKEN"
"""Holds the client bearer token (from ``spec.authTokenSecret``)."""
KIND = "ClassifierService"
DEFAULT_STATE_DIR = ".cache/foresight"


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


class ServiceFileError(Exception):
    """The file holds no valid ClassifierService, or it cannot be served locally as written."""


@dataclass(frozen=True)
class ServiceFile:
    name: str
    namespace: str
    spec: ClassifierServiceSpec


def _documents(path: str) -> list[object]:
    from foresight.api.documents import DocumentError, load_documents

    try:
        return load_documents(path)
    except DocumentError as exc:
        raise ServiceFileError(f"{path}: {exc}") from exc


def is_classifier_service_file(path: str) -> bool:
    """Whether the first ``foresight.dev`` resource in ``path`` is a ClassifierService.

    ``-`` (standard input) cannot be read twice, so it answers False; unreadable files too (the
    caller's own loader then reports why).
    """
    if path == "-":
        return False
    try:
        docs = _documents(path)
    except ServiceFileError:
        return False
    ours = [
        d for d in docs if isinstance(d, dict) and str(d.get("apiVersion", "")).startswith("foresight.dev/")
    ]
    return bool(ours) and isinstance(ours[0], dict) and ours[0].get("kind") == KIND


def load_classifier_service(path: str, *, default_namespace: str = "default") -> ServiceFile:
    """The first ClassifierService in ``path``, validated like the API server would."""
    from foresight.api.validation import validate_object

    docs = [d for d in _documents(path) if isinstance(d, dict) and d.get("kind") == KIND]
    if not docs:
        raise ServiceFileError(f"{path}: no {KIND} in the file")
    doc = docs[0]
    errors = validate_object(doc)
    if errors:
        raise ServiceFileError(f"{path}: invalid {KIND}: " + "; ".join(str(e) for e in errors))
    meta = doc.get("metadata") or {}
    return ServiceFile(
        name=str(meta.get("name") or "classifier"),
        namespace=str(meta.get("namespace") or default_namespace),
        spec=ClassifierServiceSpec.model_validate(doc["spec"]),
    )


def local_config(
    service: ServiceFile,
    environ: Mapping[str, str],
    *,
    state_dir: Path,
    port: int | None = None,
    onnx_model: str | None = None,
    dashscope_base_url: str | None = None,
) -> ClassifierConfig:
    """The config local mode serves: 127.0.0.1, the cache under ``state_dir``, secrets from ``environ``.

    ``dashscope_base_url`` replaces ``spec.backend.dashscope.baseUrl`` (``--dashscope-base-url``).
    Raises :class:`ServiceFileError` saying which environment variable to set when a secret the
    spec asks for is missing (the values themselves are never printed).
    """
    spec = service.spec
    if dashscope_base_url is not None:
        if spec.backend.type != "dashscope" or spec.backend.dashscope is None:
            raise ServiceFileError(
                f"--dashscope-base-url applies to backend dashscope; {KIND} {service.namespace}/"
                f"{service.name} uses backend {spec.backend.type}: drop the option"
            )
        dashscope = spec.backend.dashscope.model_copy(update={"base_url": dashscope_base_url})
        # model_copy does not validate: the URL is checked when the ClassifierConfig is built.
        spec = spec.model_copy(update={"backend": spec.backend.model_copy(update={"dashscope": dashscope})})
    missing: list[str] = []
    if spec.backend.type == "dashscope" and not environ.get(API_KEY_ENV):
        ref = spec.backend.dashscope.api_key_secret if spec.backend.dashscope else None
        where = f" (in the cluster it comes from Secret {ref.name}, key {ref.key})" if ref else ""
        missing.append(f"{API_KEY_ENV}: the DashScope API key{where}")
    if spec.auth_token_secret is not None and not environ.get(AUTH_TOKEN_ENV):
        missing.append(f"{AUTH_TOKEN_ENV}: the bearer token clients must send (spec.authTokenSecret is set)")
    if (
        spec.cache.store == "redis"
        and spec.cache.redis is not None
        and spec.cache.redis.password_secret is not None
        and not environ.get(REDIS_PASSWORD_ENV)
    ):
        missing.append(f"{REDIS_PASSWORD_ENV}: the Redis password (spec.cache.redis.passwordSecret is set)")
    if missing:
        raise ServiceFileError(
            f"{KIND} {service.namespace}/{service.name} needs these environment variables in local mode: "
            + "; ".join(missing)
        )
    if spec.backend.type == "onnx" and onnx_model is None:
        model = spec.backend.onnx.model_version if spec.backend.onnx else "?"
        raise ServiceFileError(
            f"backend onnx names ModelVersion {model!r}, which only exists in a cluster: give its "
            "ONNX file with --onnx-model PATH"
        )
    cache_dir = state_dir / "classifier" / service.namespace / service.name
    cache_dir.mkdir(parents=True, exist_ok=True)
    return classifier_config_from_spec(
        spec,
        namespace=service.namespace,
        name=service.name,
        sqlite_path=str(cache_dir / "classifier.db"),
        host="127.0.0.1",
        port=port,
        onnx_model_path=onnx_model,
    )


def _serve(config: ClassifierConfig) -> None:
    from .classifier.server import run

    run(config)


def main_serve_local(
    args: argparse.Namespace,
    *,
    environ: Mapping[str, str] | None = None,
    serve: Callable[[ClassifierConfig], None] | None = None,
    stderr: TextIO | None = None,
) -> int:
    """``foresight run -f FILE --local`` for a ClassifierService: serve it until interrupted.

    Returns 2 when the file or the environment is not usable (the message says what to fix).
    """
    import os

    env = dict(os.environ) if environ is None else dict(environ)
    err = stderr or sys.stderr
    try:
        service = load_classifier_service(
            args.filename, default_namespace=getattr(args, "namespace", None) or "default"
        )
        config = local_config(
            service,
            env,
            state_dir=Path(getattr(args, "state_dir", None) or DEFAULT_STATE_DIR).resolve(),
            port=getattr(args, "port", None),
            onnx_model=getattr(args, "onnx_model", None),
            dashscope_base_url=getattr(args, "dashscope_base_url", None),
        )
    except (ServiceFileError, ValueError) as exc:
        print(f"error: {exc}", file=err, flush=True)
        return 2
    backend: str = config.backend.type
    if backend == "dashscope" and config.backend.dashscope.base_url:
        backend += f" at {config.backend.dashscope.base_url}"
    cache: str = config.cache.store
    if cache == "sqlite":
        cache += f" at {config.cache.sqlite_path}"
    print(
        f"serving {KIND} {service.namespace}/{service.name} on http://{config.host}:{config.port}/ "
        f"(backend {backend}, cache {cache}); Ctrl-C stops it",
        file=err,
        flush=True,
    )
    (serve or _serve)(config)
    return 0
