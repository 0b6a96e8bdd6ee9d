"""The ModelVersion verify / optimise job: what ``foresight model-job --config FILE`` runs in its pod.

Steps: resolve the artifact URI (``pvc://`` through the pod's mounts, ``s3://`` through the S3
settings in the environment, ``file://`` locally), download it with every file checked against the
SHA-256 the store recorded (and against ``spec.artifact.sha256`` when given), load it, run one
inference, and, when ``spec.optimize`` asks, export / quantise / prune / measure with
:func:`foresight.optimize.optimize_model` and upload the results *next to* the original, under
``<artifact>.optimized/`` (with its own manifest). Progress goes to stdout as JSON lines; the
result goes into the termination message (JSON, at most 4096 bytes), the only channel back to the
operator.

Exit status: 0 whenever the job reached a verdict, including a negative one (a checksum mismatch
does not get better on retry, so the Job must not burn its retries on it); 75 (EX_TEMPFAIL) when
the store was unavailable and a retry can help; 1 for anything unexpected.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import yaml

from foresight.api.modelversion import ModelVersionReason, ModelVersionSpec
from foresight.contract import env as pod_env
from foresight.contract.modelversion import EXIT_RETRY, VerifyResult
from foresight.contract.termination import termination_log_path, write_termination_log

__all__ = [
    "OPTIMIZED_SUFFIX",
    "JobConfig",
    "VerifyError",
    "load_job_config",
    "main",
    "run_job",
    "verify_model",
]

log = logging.getLogger(__name__)

OPTIMIZED_SUFFIX = ".optimized"
MAIN_FILES = ("model.pt", "model.onnx")

# Reasons beyond ModelVersionReason: the store, not the artifact, is at fault.
STORE_UNAVAILABLE = "StoreUnavailable"
ACCESS_DENIED = "AccessDenied"
INVALID_URI = "InvalidArtifactURI"
OPTIMIZE_FAILED = "OptimizeFailed"


class VerifyError(Exception):
    """A verdict against the artifact (or its store): a condition reason and what to do."""

    def __init__(self, reason: str, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retryable = retryable


@dataclass(frozen=True)
class JobConfig:
    """The job's input: which ModelVersion (for messages) and its spec."""

    name: str
    namespace: str
    generation: int | None
    spec: ModelVersionSpec


def load_job_config(path: str | os.PathLike[str]) -> JobConfig:
    """Read the ConfigMap file the operator writes (``name``, ``namespace``, ``generation``, ``spec``)."""
    doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(doc, dict) or not isinstance(doc.get("spec"), dict):
        raise ValueError(f"{path}: expected a mapping with name, namespace, generation and spec")
    return JobConfig(
        name=str(doc.get("name") or "?"),
        namespace=str(doc.get("namespace") or "default"),
        generation=doc.get("generation"),
        spec=ModelVersionSpec.model_validate(doc["spec"]),
    )


@dataclass
class Fetched:
    """The downloaded artifact and what the store says about it."""

    local: Path
    checksum: str
    size_bytes: int
    is_dir: bool
    main_sha256: str | None = None
    files: dict[str, str] = field(default_factory=dict)


def resolve_uri(uri: str, pvc_mounts: Mapping[str, str]) -> str:
    """``pvc://claim/path`` -> ``file:///<mount>/path``; other URIs unchanged."""
    if not uri.startswith("pvc://"):
        return uri
    claim, _, rest = uri[len("pvc://") :].partition("/")
    mount = pvc_mounts.get(claim)
    if mount is None:
        raise VerifyError(
            INVALID_URI,
            f"{uri}: claim {claim!r} is not mounted in this pod (mounted: {sorted(pvc_mounts) or 'none'}); "
            "the operator mounts the claim named in artifact.uri, so this is a bug worth reporting",
        )
    return Path(mount, rest).resolve().as_uri()


def _store_error(exc: Exception, uri: str) -> VerifyError:
    from foresight.artifacts import (
        AccessDeniedError,
        ArtifactNotFoundError,
        BucketNotFoundError,
        ChecksumMismatchError,
        StoreUnavailableError,
        UnsupportedURIError,
    )

    if isinstance(exc, ChecksumMismatchError):
        return VerifyError(ModelVersionReason.CHECKSUM_MISMATCH, str(exc))
    if isinstance(exc, ArtifactNotFoundError | BucketNotFoundError):
        return VerifyError(ModelVersionReason.ARTIFACT_NOT_FOUND, str(exc))
    if isinstance(exc, AccessDeniedError):
        return VerifyError(ACCESS_DENIED, str(exc))
    if isinstance(exc, StoreUnavailableError):
        return VerifyError(STORE_UNAVAILABLE, str(exc), retryable=True)
    if isinstance(exc, UnsupportedURIError):
        return VerifyError(INVALID_URI, str(exc))
    return VerifyError(ModelVersionReason.ARTIFACT_NOT_FOUND, f"{uri}: {type(exc).__name__}: {exc}")


def fetch(uri: str, resolved: str, workdir: Path, s3: Any | None, expected: str | None) -> Fetched:
    """Download the artifact at ``resolved`` (a directory with a manifest, or one object)."""
    from foresight.artifacts import ArtifactError, open_object, open_store

    try:
        store = open_store(resolved, s3=s3)
        if store.has_dir(""):
            info = store.get_dir("", workdir / "artifact")
            files = {f.key: f.sha256 for f in info.files}  # keys are relative to the directory
            main = next((files[name] for name in MAIN_FILES if name in files), None)
            fetched = Fetched(
                local=workdir / "artifact",
                checksum=info.manifest.sha256,
                size_bytes=sum(f.size for f in info.files),
                is_dir=True,
                main_sha256=main,
                files=files,
            )
        else:
            parent, name = open_object(resolved, s3=s3)
            target = workdir / name
            obj = parent.get_file(name, target)
            fetched = Fetched(local=target, checksum=obj.sha256, size_bytes=obj.size, is_dir=False)
    except ArtifactError as exc:
        raise _store_error(exc, uri) from exc
    except (NotADirectoryError, IsADirectoryError) as exc:
        raise VerifyError(ModelVersionReason.ARTIFACT_NOT_FOUND, f"{uri}: {exc}") from exc
    if expected is not None:
        accepted = {fetched.checksum, fetched.main_sha256} - {None}
        if expected.lower() not in accepted:
            what = (
                f"the manifest's sha256 {fetched.checksum} or {MAIN_FILES}'s {fetched.main_sha256}"
                if fetched.is_dir
                else f"sha256 {fetched.checksum}"
            )
            raise VerifyError(
                ModelVersionReason.CHECKSUM_MISMATCH,
                f"{uri}: spec.artifact.sha256 is {expected} but the stored artifact has {what}; the "
                "artifact was replaced or the spec names the wrong one: fix spec.artifact.sha256 or "
                "re-publish the model",
            )
    return fetched


def _optimized_uri(uri: str, name: str) -> str:
    return f"{uri.rstrip('/')}{OPTIMIZED_SUFFIX}/{name}"


def verify_model(
    config: JobConfig,
    *,
    pvc_mounts: Mapping[str, str],
    s3: Any | None,
    workdir: Path,
    emit: Callable[[dict[str, Any]], None],
    latency_repeats: int = 50,
    clock: Callable[[], datetime] = lambda: datetime.now(tz=UTC),
) -> dict[str, Any]:
    """Verify (and optimise) one ModelVersion; return the result document or raise :class:`VerifyError`."""
    from .loaders import LoadError, load_artifact, run_once

    spec = config.spec
    uri = spec.artifact.uri
    resolved = resolve_uri(uri, pvc_mounts)
    emit({"event": "fetch", "uri": uri})
    fetched = fetch(uri, resolved, workdir, s3, spec.artifact.sha256)
    emit({"event": "fetched", "checksum": fetched.checksum, "sizeBytes": fetched.size_bytes})
    try:
        model = load_artifact(fetched.local)
        shape = run_once(model)
    except LoadError as exc:
        raise VerifyError(ModelVersionReason.LOAD_FAILED, f"{uri}: {exc}") from exc
    emit({"event": "verified", "format": model.format, "outputShape": shape})
    doc: dict[str, Any] = {
        "reason": ModelVersionReason.VERIFIED.value,
        "message": f"checksum matched, the {model.format} model loaded and one inference ran "
        f"(output shape {shape})",
        "verified": True,
        "checksum": fetched.checksum,
        "sizeBytes": fetched.size_bytes,
        "format": model.format,
        "generation": config.generation,
    }
    distilled = fetched.local / "distillation.json" if fetched.is_dir else None
    if distilled is not None and distilled.is_file():
        # A distilled student (foresight.training.tasks.distill): size, latency and accuracy against
        # its teacher, measured by the run that trained it, into status.distillation.
        doc["distillation"] = json.loads(distilled.read_text())
    if spec.optimize is not None:
        _optimize_and_upload(model, spec.optimize, uri, resolved, s3, workdir, latency_repeats, doc, emit)
    doc["verifiedTime"] = clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return doc


def _optimize_and_upload(
    model: Any, opt: Any, uri: str, resolved: str, s3: Any | None, workdir: Path, latency_repeats: int,
    doc: dict[str, Any], emit: Callable[[dict[str, Any]], None],
) -> None:  # fmt: skip
    """Optimise as ``spec.optimize`` asks, upload the results next to the artifact under
    ``<artifact>.optimized/`` and add them (URIs, checksums, parity, latency) to ``doc``."""
    from foresight.artifacts import ArtifactError, open_object

    out = workdir / "optimized"
    emit({"event": "optimize", "onnx": opt.onnx, "quantize": opt.quantize})
    try:
        records = _optimize(model, opt, out, latency_repeats, doc)
    except VerifyError:
        raise
    except Exception as exc:  # export / quantisation failures carry their own advice
        raise VerifyError(OPTIMIZE_FAILED, f"optimising {uri} failed: {type(exc).__name__}: {exc}") from exc
    try:
        parent, name = open_object(resolved, s3=s3)
        parent.put_dir(out, f"{name}{OPTIMIZED_SUFFIX}")
    except ArtifactError as exc:
        raise _store_error(exc, uri) from exc
    for field_name, record in records.items():
        doc[field_name] = {
            "uri": _optimized_uri(uri, Path(record["path"]).name),
            "sha256": record["sha256"],
            "sizeBytes": record["size_bytes"],
        }
    emit({"event": "optimized", **{k: doc[k] for k in records}})
    if doc.get("parityPassed") is False:
        doc["reason"] = ModelVersionReason.PARITY_FAILED.value
        doc["message"] = (
            f"ONNX output differs from eager by {doc['parityMaxAbsDiff']:.3g}, above "
            f"optimize.parityThreshold {opt.parity_threshold:g}: do not serve the ONNX artifact; raise "
            "the threshold if that difference is acceptable, or set optimize.onnx=false"
        )
    else:
        doc["message"] += "; " + _optimize_summary(doc)


def _optimize(
    model: Any, opt: Any, out: Path, latency_repeats: int, doc: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Run the optimise step into ``out``; fill ``doc``; return status field -> artifact record."""
    from foresight.optimize import optimize_model, quantize_int8
    from foresight.optimize.report import ArtifactRecord

    if model.module is None:
        # An ONNX artifact: no eager model to export from or compare against; quantisation only.
        if not opt.quantize:
            return {}
        out.mkdir(parents=True, exist_ok=True)
        result = quantize_int8(model.onnx_path, out / "model.int8.onnx")
        record = ArtifactRecord.of("onnx-int8", result.path)
        return {"int8": {"path": record.path, "sha256": record.sha256, "size_bytes": record.size_bytes}}
    report = optimize_model(
        model.module,
        model.example,
        out,
        onnx=opt.onnx,
        quantize=opt.quantize and opt.onnx,
        prune_sparsity=opt.prune.sparsity if opt.prune else None,
        parity_threshold=opt.parity_threshold,
        batch_sizes=tuple(opt.batch_sizes),
        latency_repeats=latency_repeats,
        latency_warmup=min(5, latency_repeats),
    )
    records: dict[str, dict[str, Any]] = {}
    names = {"onnx": "onnx", "onnx-int8": "int8"}
    for art in report.artifacts:
        if art.name in names:
            records[names[art.name]] = {"path": art.path, "sha256": art.sha256, "size_bytes": art.size_bytes}
    if report.parity is not None:
        doc["parityMaxAbsDiff"] = report.parity.max_abs_diff
        doc["parityPassed"] = report.parity.passed
    if report.quantization is not None and report.quantization.parity is not None:
        doc["int8ParityMaxAbsDiff"] = report.quantization.parity.max_abs_diff
    if report.pruning is not None:
        doc["sparsity"] = report.pruning.sparsity
    if report.latency is not None:
        doc["latency"] = [
            {
                "runtime": s.runtime,
                "batchSize": s.batch_size,
                "p50Ms": round(s.p50_ms, 4),
                "p99Ms": round(s.p99_ms, 4),
            }
            for s in report.latency.results
        ]
    return records


def _optimize_summary(doc: Mapping[str, Any]) -> str:
    parts = []
    if "parityMaxAbsDiff" in doc:
        parts.append(f"ONNX parity {doc['parityMaxAbsDiff']:.2g}")
    if "int8" in doc:
        parts.append(f"int8 {doc['int8']['sizeBytes']} bytes")
    if "sparsity" in doc:
        parts.append(f"sparsity {doc['sparsity']:.2f}")
    return ", ".join(parts) or "optimised"


def run_job(
    config: JobConfig,
    *,
    environ: Mapping[str, str],
    stdout: TextIO,
    workdir: Path | None = None,
    latency_repeats: int = 50,
) -> tuple[int, dict[str, Any]]:
    """Run the job, write the termination message, return ``(exit code, message document)``."""
    from foresight.training.launch import s3_options_from_environ

    def emit(event: dict[str, Any]) -> None:
        stdout.write(json.dumps(event, sort_keys=True, default=str) + "\n")
        stdout.flush()

    try:
        mounts = json.loads(environ.get(pod_env.PVC_MOUNTS) or "{}")
        with tempfile.TemporaryDirectory(prefix="foresight-verify-", dir=workdir) as tmp:
            doc = verify_model(
                config,
                pvc_mounts=mounts,
                s3=s3_options_from_environ(environ),
                workdir=Path(tmp),
                emit=emit,
                latency_repeats=latency_repeats,
            )
        code = 0
    except VerifyError as exc:
        log.error("verification of %s/%s failed (%s): %s", config.namespace, config.name, exc.reason, exc)
        doc = {"reason": exc.reason, "message": exc.message, "verified": False, "retryable": exc.retryable}
        doc["generation"] = config.generation
        code = EXIT_RETRY if exc.retryable else 0
    except Exception as exc:
        traceback.print_exc()
        doc = {"reason": "VerifyFailed", "message": f"{type(exc).__name__}: {exc}", "verified": False}
        code = 1
    emit({"event": "result", "exitCode": code, **doc})
    write_termination_log(termination_log_path(environ), VerifyResult.of(doc).termination_message())
    return code, doc


def main(argv: Sequence[str] | None = None) -> int:
    """``foresight model-job --config FILE``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="foresight model-job")
    parser.add_argument("--config", required=True)
    parser.add_argument("--latency-repeats", type=int, default=50)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    environ = dict(os.environ)
    try:
        config = load_job_config(args.config)
    except (OSError, ValueError) as exc:
        doc = {"reason": "InvalidSpec", "message": f"cannot read {args.config}: {exc}", "verified": False}
        print(json.dumps({"event": "result", "exitCode": 0, **doc}), flush=True)
        write_termination_log(termination_log_path(environ), VerifyResult.of(doc).termination_message())
        return 0
    code, _ = run_job(config, environ=environ, stdout=sys.stdout, latency_repeats=args.latency_repeats)
    return code
