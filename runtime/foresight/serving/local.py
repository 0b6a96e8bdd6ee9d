"""``foresight run -f FILE --local`` for a ClassifierService: serve its spec on this machine.

The spec becomes the service's config through the same mapping the operator renders into the
Deployment's ConfigMap (:func:`foresight.contract.classifier.classifier_config_from_spec`), served
on 127.0.0.1. Secrets never enter the config: it names the environment variables
(:data:`~foresight.contract.classifier.API_KEY_ENV`, ``REDIS_PASSWORD_ENV``, ``AUTH_TOKEN_ENV``),
which a laptop user exports by hand.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from foresight.api.classifierservice import ClassifierServiceSpec
from foresight.contract.classifier import (
    API_KEY_ENV,
    AUTH_TOKEN_ENV,
    REDIS_PASSWORD_ENV,
    ClassifierConfig,
    VariantSource,
    classifier_config_from_spec,
)
from foresight.contract.experiment import ROUTING_FILE

__all__ = [
    "ServiceFile",
    "ServiceFileError",
    "is_classifier_service_file",
    "load_classifier_service",
    "local_config",
    "main_serve_local",
    "parse_variant",
]

KIND = "ClassifierService"
DEFAULT_STATE_DIR = ".cache/foresight"


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


def parse_variant(text: str) -> VariantSource:
    """``NAME=PATH.onnx`` or ``NAME=dashscope:MODEL`` (``--variant``) as a :class:`VariantSource`."""
    name, sep, model = text.partition("=")
    if not sep or not name or not model:
        raise ServiceFileError(f"--variant {text!r}: write NAME=PATH.onnx or NAME=dashscope:MODEL")
    if model.startswith("dashscope:"):
        return VariantSource(name=name, dashscope_model=model.removeprefix("dashscope:") or None)
    if not Path(model).is_file():
        raise ServiceFileError(f"--variant {name}: {model} is not a file (give the variant's .onnx model)")
    return VariantSource(name=name, onnx_model_path=str(Path(model).resolve()))


def local_config(
    service: ServiceFile,
    environ: Mapping[str, str],
    *,
    state_dir: Path,
    port: int | None = None,
    onnx_model: str | None = None,
    dashscope_base_url: str | None = None,
    variants: Sequence[VariantSource] = (),
    routing_file: str | None = None,
) -> ClassifierConfig:
    """The config local mode serves: 127.0.0.1, the cache under ``state_dir``, secrets from ``environ``.

    ``dashscope_base_url`` replaces ``spec.backend.dashscope.baseUrl`` (``--dashscope-base-url``).
    ``variants`` (``--variant``) are served side by side, split by ``routing_file`` (default
    ``routing.json`` beside the cache, which an A/B driver writes). Raises
    :class:`ServiceFileError` saying which environment variable to set when a secret the spec asks
    for is missing (the values themselves are never printed).
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
    uses_dashscope = (
        any(v.onnx_model_path is None for v in variants) if variants else spec.backend.type == "dashscope"
    )
    if uses_dashscope and not environ.get(API_KEY_ENV):
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
    if spec.backend.type == "onnx" and onnx_model is None and not any(v.onnx_model_path for v in variants):
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
        variants=variants,
        routing_file=routing_file or str(cache_dir / ROUTING_FILE),
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
            variants=[parse_variant(v) for v in getattr(args, "variant", None) or ()],
            routing_file=getattr(args, "routing_file", None),
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
    if config.variants:
        backend = (
            "variants "
            + ", ".join(f"{v.name} ({v.backend.type})" for v in config.variants)
            + f", split by {config.routing.file}"
        )
    print(
        f"serving {KIND} {service.namespace}/{service.name} on http://{config.host}:{config.port}/ "
        f"(backend {backend}, cache {cache}); Ctrl-C stops it",
        file=err,
        flush=True,
    )
    (serve or _serve)(config)
    return 0
