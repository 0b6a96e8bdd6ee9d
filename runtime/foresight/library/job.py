"""The ModelLibrary fetch Job: ``foresight library fetch --config FILE``, start to finish.

What the operator renders (a ConfigMap mounted as the config file) is :class:`FetchConfig`: the
resource's name, namespace, generation and spec as they are, where verified libraries and the
active pointer live (``store`` plus ``prefix``), and where the ConfigMap source is mounted. The
environment carries only secrets and the result path:

- ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``: credentials of an ``s3://`` library store;
- ``FORESIGHT_SOURCE_AWS_ACCESS_KEY_ID`` / ``FORESIGHT_SOURCE_AWS_SECRET_ACCESS_KEY``: credentials
  of an ``s3`` source (``spec.source.store.credentialsSecret``), when it needs any;
- ``FORESIGHT_TERMINATION_LOG`` (or ``FORESIGHT_TERMINATION_MESSAGE_PATH``): where the result goes,
  default ``/dev/termination-log``.

Steps: fetch (:mod:`.sources`, checksum first) -> read and verify every case (:mod:`.archive`,
:mod:`.verify`) -> leave-one-out quality (:mod:`.recommend`) -> store the version (:mod:`.store`)
-> switch the pointer (``spec.active: true``) or withdraw this version from it (``false``). Any
failure before the last step leaves the pointer as it was: nothing partial is ever activated.

The result is one JSON document (:func:`result_document`; the fields of ``ModelLibrary.status``
plus ``phase``, ``reason``, ``message`` and ``retryable``), printed as the last line of stdout and
written as the termination message (at most 4096 bytes, shrunk so it stays valid JSON). Progress
goes to stdout as JSON lines.

Exit status: 0 whenever the Job reached a verdict, a negative one included (a wrong checksum does
not get better on retry); 75 (EX_TEMPFAIL) when the source or the store was unreachable and a retry
can help; 1 for anything unexpected (the traceback is on stderr, the result says ``FetchFailed``).
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
from pydantic import Field, ValidationError

from foresight.api.meta import ApiModel
from foresight.api.modellibrary import LibraryPhase, LibraryReason, ModelLibrarySpec
from foresight.artifacts import ArtifactError, S3Options, open_store, s3_credentials_from_environ
from foresight.contract.s3 import AWS_ENDPOINT
from foresight.contract.termination import (
    TERMINATION_MESSAGE_LIMIT,
    Doc,
    cut_message,
    fit_message,
    keep_only,
    termination_log_path,
    write_termination_log,
)

from .archive import Limits, RawLibrary, read_library
from .errors import LibraryError
from .recommend import leave_one_out
from .records import Library
from .sources import Fetched, FetchError, SourceHealth, SourceOptions, fetch_source, source_kind
from .store import DEFAULT_PREFIX, LibraryStore, Pointer
from .verify import VerifyReport, verify_raw

__all__ = [
    "EXIT_RETRY",
    "SOURCE_CREDENTIALS_PREFIX",
    "FetchConfig",
    "load_config",
    "main",
    "result_document",
    "run_fetch",
    "termination_message",
]

log = logging.getLogger(__name__)

EXIT_RETRY = 75
SOURCE_CREDENTIALS_PREFIX = "FORESIGHT_SOURCE_"
MiB = 1024 * 1024


class FetchLimits(ApiModel):
    """Size limits of a library, in MiB (see :class:`foresight.library.archive.Limits`)."""

    max_archive_mib: int = Field(default=64, ge=1, le=4096)
    max_cases_mib: int = Field(default=16, ge=1, le=1024)
    max_total_mib: int = Field(default=256, ge=1, le=16384)

    def to_limits(self) -> Limits:
        return Limits(
            max_archive_bytes=self.max_archive_mib * MiB,
            max_cases_bytes=self.max_cases_mib * MiB,
            max_total_bytes=self.max_total_mib * MiB,
        )


class FetchConfig(ApiModel):
    """The fetch Job's config file (YAML or JSON), rendered by the operator."""

    name: str = Field(description="name: the ModelLibrary (messages and the pointer's owner).")
    namespace: str = Field(default="default")
    generation: int | None = Field(default=None, description="generation: echoed in the result.")
    spec: ModelLibrarySpec
    store: str = Field(
        description="store: where verified versions and the pointer go, `file:///dir` or "
        "`s3://bucket/prefix` (the operator resolves a PVC to its mount path)."
    )
    store_endpoint: str | None = Field(
        default=None, description="storeEndpoint: S3 `host:port` of an s3 store."
    )
    store_region: str = Field(default="us-east-1")
    store_insecure: bool = Field(default=False, description="storeInsecure: plain HTTP to the S3 endpoint.")
    prefix: str = Field(default=DEFAULT_PREFIX, description="prefix: key prefix of libraries in the store.")
    config_map_dir: str | None = Field(
        default=None, description="configMapDir: where spec.source.configMap is mounted (one file per key)."
    )
    limits: FetchLimits = Field(default_factory=FetchLimits)
    timeout_seconds: float = Field(
        default=30.0, gt=0, le=600, description="timeoutSeconds: per HTTP/S3 request."
    )
    loo_max_held_out: int = Field(
        default=2000, ge=0, description="looMaxHeldOut: cases in the quality estimate."
    )

    @property
    def owner(self) -> str:
        return f"{self.namespace}/{self.name}"


def load_config(path: str | os.PathLike[str]) -> FetchConfig:
    """Read the config file; ``ValueError`` with the field for a bad one."""
    doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a mapping with name, namespace, generation, spec and store")
    try:
        return FetchConfig.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{path}: {where}: {first['msg']}") from exc


def _now() -> datetime:
    return datetime.now(tz=UTC)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Outcome:
    """What the steps found out, as they go (everything the result document reports)."""

    reason: LibraryReason = LibraryReason.FETCH_FAILED
    message: str = ""
    retryable: bool = False
    ok: bool = False
    health: SourceHealth | None = None
    checksum: str | None = None
    report: VerifyReport | None = None
    quality: dict[str, Any] | None = None
    stored_uri: str | None = None
    pointer: Pointer | None = None
    pointer_uri: str | None = None
    active: bool = False
    models: list[dict[str, str]] = field(default_factory=list)


def _library_store(config: FetchConfig, environ: Mapping[str, str]) -> LibraryStore:
    s3 = None
    if config.store.startswith("s3://"):
        s3 = S3Options(
            endpoint=config.store_endpoint or AWS_ENDPOINT,
            region=config.store_region,
            secure=not config.store_insecure,
            credentials=s3_credentials_from_environ(environ),
            timeout_s=config.timeout_seconds,
        )
    try:
        return LibraryStore(open_store(config.store, s3=s3), config.prefix)
    except ArtifactError as exc:
        raise LibraryError(
            LibraryReason.STORE_UNAVAILABLE, f"library store {config.store}: {exc}", retryable=exc.retryable
        ) from exc


def run_fetch(
    config: FetchConfig,
    *,
    environ: Mapping[str, str],
    workdir: Path,
    emit: Callable[[dict[str, Any]], None],
    clock: Callable[[], datetime] = _now,
) -> tuple[int, dict[str, Any]]:
    """Fetch, verify, store and (de)activate one library; returns ``(exit code, result document)``."""
    out = _Outcome()
    fetched_at = clock()
    try:
        store = _library_store(config, environ)
        fetched, raw, library = _fetch_and_verify(config, environ, workdir, out, emit)
        _store_and_switch(config, store, fetched, raw, library, out, emit, fetched_at)
        out.ok = True
        code = 0
    except FetchError as exc:
        out.reason, out.message, out.retryable = exc.reason, exc.message, exc.retryable
        out.health = exc.health
        code = EXIT_RETRY if exc.retryable else 0
    except LibraryError as exc:
        out.reason, out.message, out.retryable = exc.reason, exc.message, exc.retryable
        code = EXIT_RETRY if exc.retryable else 0
    except Exception as exc:  # the Job must always end with a result the operator can read
        traceback.print_exc()
        out.reason = LibraryReason.FETCH_FAILED
        out.message = f"unexpected {type(exc).__name__}: {exc}; the Job's log has the traceback"
        code = 1
    if not out.ok and out.health is None:
        out.health = SourceHealth(source_kind(config.spec), "", reachable=False, message="not fetched")
    return code, result_document(config, out, fetched_at)


def _fetch_and_verify(
    config: FetchConfig,
    environ: Mapping[str, str],
    workdir: Path,
    out: _Outcome,
    emit: Callable[[dict[str, Any]], None],
) -> tuple[Fetched, RawLibrary, Library]:
    """Steps 1-2: the source's file (checksum first), read and every case verified."""
    spec = config.spec
    emit({"event": "fetch", "kind": source_kind(spec)})
    options = SourceOptions(
        config_map_dir=Path(config.config_map_dir) if config.config_map_dir else None,
        s3_credentials=s3_credentials_from_environ(environ, SOURCE_CREDENTIALS_PREFIX),
        timeout_s=config.timeout_seconds,
    )
    limits = config.limits.to_limits()
    fetched = fetch_source(spec, workdir, limits=limits, options=options)
    out.health, out.checksum = fetched.health, fetched.sha256
    emit({"event": "fetched", "sha256": fetched.sha256, "sizeBytes": fetched.size})
    raw = read_library(fetched.path, workdir / "read", limits)
    report = verify_raw(raw, expect_version=spec.version)
    out.report = report
    emit({"event": "verified", **{k: v for k, v in report.to_json().items() if k != "findings"}})
    if not report.ok or report.library is None:
        assert report.reason is not None
        raise LibraryError(report.reason, f"{report.message}; nothing was activated")
    return fetched, raw, report.library


def _store_and_switch(
    config: FetchConfig,
    store: LibraryStore,
    fetched: Fetched,
    raw: RawLibrary,
    library: Library,
    out: _Outcome,
    emit: Callable[[dict[str, Any]], None],
    fetched_at: datetime,
) -> None:
    """Steps 3-5: quality, the stored version, then the pointer (the one write that activates)."""
    max_held_out = config.loo_max_held_out
    quality = leave_one_out(library, max_held_out=max_held_out) if max_held_out else None
    out.quality = quality.to_json() if quality else None
    verification = {
        "checksum": fetched.sha256,
        "form": raw.form,
        "sizeBytes": fetched.size,
        "cases": len(library.cases),
        "models": len(library.manifest.models),
        "verifiedAt": _iso(fetched_at),
        "quality": out.quality,
        "source": fetched.health.to_json(),
        "owner": config.owner,
    }
    ref, models, written = store.put_version(
        library, raw.cases, models_root=raw.root, verification=verification
    )
    out.stored_uri, out.models = ref.uri, [m.to_json() for m in models]
    emit({"event": "stored", "uri": ref.uri, "written": written})
    out.pointer_uri = store.pointer_uri(library.name)
    what = f"{library.name} {library.version}: {len(library.cases)} cases verified"
    if config.spec.active:
        out.pointer = store.activate(library.name, ref, owner=config.owner)
        out.active, out.reason = True, LibraryReason.ACTIVE
        out.message = f"{what} and active (pointer {out.pointer_uri})"
    else:
        out.pointer = store.withdraw(library.name, library.version)
        out.reason = LibraryReason.INACTIVE
        out.message = f"{what} and stored, not active (spec.active is false)"
    pointer = out.pointer.to_json() if out.pointer else None
    emit({"event": "pointer", "active": out.active, "pointer": pointer})


def result_document(config: FetchConfig, out: _Outcome, fetched_at: datetime) -> dict[str, Any]:
    """The result in the API's status vocabulary (camelCase), ``None`` fields left out."""
    report = out.report
    pointer = out.pointer
    doc: dict[str, Any] = {
        "phase": (LibraryPhase.READY if out.ok else LibraryPhase.FAILED).value,
        "reason": out.reason.value,
        "message": out.message,
        "retryable": out.retryable,
        "generation": config.generation,
        "libraryName": report.name if report else None,
        "version": report.version if report else None,
        "schemaVersion": report.schema_version if report else None,
        "checksum": out.checksum,
        "cases": report.cases if report else None,
        "validCases": report.valid if report and report.checked else None,
        "invalidCases": report.invalid if report and report.checked else None,
        "invalidReasons": report.first_reasons(5, 300) if report and not report.ok else None,
        "models": report.models if report else None,
        "modelArtifacts": out.models or None,
        "fetchedTime": _iso(fetched_at),
        "source": out.health.to_json() | {"checkedTime": _iso(fetched_at)} if out.health else None,
        "storedUri": out.stored_uri,
        "pointer": out.pointer_uri,
        "active": out.active,
        "activeVersion": pointer.active.version if pointer and pointer.active else None,
        "activeOwner": pointer.active.owner if pointer and pointer.active else None,
        "previousVersion": pointer.previous.version if pointer and pointer.previous else None,
        "quality": out.quality,
    }
    return {k: v for k, v in doc.items() if v is not None}


_ESSENTIALS = (
    "phase", "reason", "message", "retryable", "generation", "libraryName", "version", "checksum",
    "cases", "validCases", "invalidCases", "models", "active", "activeVersion", "previousVersion",
    "pointer", "storedUri", "fetchedTime",
)  # fmt: skip
"""What the last resort keeps of a result that does not fit (the status fields that matter most)."""


def termination_message(doc: Mapping[str, Any], limit: int = TERMINATION_MESSAGE_LIMIT) -> str:
    """Compact JSON under ``limit`` bytes that still parses: the least important parts go first."""
    return fit_message(
        doc,
        (_count_models, _short_reasons, cut_message(800), keep_only(_ESSENTIALS), cut_message(400)),
        limit,
    )


def _count_models(doc: Doc) -> Doc | None:
    if "modelArtifacts" not in doc:
        return None
    out = dict(doc)
    models = out.pop("modelArtifacts")
    if models:
        out["modelArtifactCount"] = len(models)
    return out


def _short_reasons(doc: Doc) -> Doc | None:
    if not doc.get("invalidReasons"):
        return None
    return {**doc, "invalidReasons": [r[:160] for r in doc["invalidReasons"][:3]]}


def execute(
    config_path: str, *, environ: Mapping[str, str], stdout: TextIO, workdir: Path | None = None
) -> tuple[int, dict[str, Any]]:
    """Load the config, run the Job, print and write the result; returns ``(exit code, result)``."""

    def emit(event: dict[str, Any]) -> None:
        stdout.write(json.dumps(event, sort_keys=True, default=str) + "\n")
        stdout.flush()

    try:
        config = load_config(config_path)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        doc: dict[str, Any] = {
            "phase": LibraryPhase.FAILED.value,
            "reason": LibraryReason.INVALID_SPEC.value,
            "message": f"cannot read the Job's config {config_path}: {exc}",
            "retryable": False,
        }
        code = 0
    else:
        with tempfile.TemporaryDirectory(prefix="foresight-library-", dir=workdir) as tmp:
            code, doc = run_fetch(config, environ=environ, workdir=Path(tmp), emit=emit)
    text = termination_message(doc)
    emit({"event": "result", "exitCode": code, **json.loads(text)})
    write_termination_log(termination_log_path(environ), text)
    return code, doc


def main(argv: Sequence[str] | None = None) -> int:
    """``foresight library fetch --config FILE``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="foresight library fetch")
    parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    code, _ = execute(args.config, environ=dict(os.environ), stdout=sys.stdout)
    return code
