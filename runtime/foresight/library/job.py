"""The ModelLibrary fetch Job: ``foresight library fetch --config FILE``, start to finish.

What the operator renders (a ConfigMap mounted as the config file) is
:class:`foresight.contract.library.FetchConfig`: the resource's name, namespace, generation and spec
as they are, where verified libraries and the active pointer live (``store`` plus ``prefix``), where
the ConfigMap source is mounted, and which other ModelLibraries hold on to being active. The
environment carries only secrets and the result path:

- ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``: credentials of an ``s3://`` library store;
- ``FORESIGHT_SOURCE_AWS_ACCESS_KEY_ID`` / ``FORESIGHT_SOURCE_AWS_SECRET_ACCESS_KEY``: credentials
  of an ``s3`` source (``spec.source.store.credentialsSecret``), when it needs any;
- ``FORESIGHT_TERMINATION_LOG`` (or ``FORESIGHT_TERMINATION_MESSAGE_PATH``): where the result goes,
  default ``/dev/termination-log``.

Steps: fetch (:mod:`.sources`, checksum first) -> read and verify every case (:mod:`.archive`,
:mod:`.verify`) -> leave-one-out quality (:mod:`.recommend`) -> store the version (:mod:`.store`)
-> switch the pointer (``spec.active: true``) or withdraw this ModelLibrary's version from it
(``false``). Any failure before the last step leaves the pointer as it was: nothing partial is ever
activated. A pointer held by one of ``protectedOwners`` (another ModelLibrary that is still active)
is not taken over: the version is stored and the result is ``ActiveConflict``, naming the holder.

``action: withdraw`` (what the operator runs when only ``spec.active`` turned false) needs no
source: it takes the version out of the pointer if this ModelLibrary holds it, and reports the
stored version's counts.

The result is one JSON document (:func:`result_document`; the contract's
:class:`~foresight.contract.library.FetchResult`: the fields of ``ModelLibrary.status`` plus
``phase``, ``reason``, ``message`` and ``retryable``), printed as the last line of stdout and written
as the termination message (at most 4096 bytes, shrunk so it stays valid JSON). On a failure it
still says which version stays active (the pointer is read when the library's name is known).
Progress goes to stdout as JSON lines.

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
from pydantic import ValidationError

from foresight.api.modellibrary import LibraryLimits, LibraryPhase, LibraryReason
from foresight.artifacts import ArtifactError, S3Options, open_store, s3_credentials_from_environ
from foresight.contract import env as pod_env
from foresight.contract.library import EXIT_RETRY, SOURCE_CREDENTIALS_PREFIX, FetchConfig, FetchResult
from foresight.contract.s3 import AWS_ENDPOINT
from foresight.contract.termination import (
    TERMINATION_MESSAGE_LIMIT,
    termination_log_path,
    write_termination_log,
)

from .archive import Limits, RawLibrary, read_library
from .errors import LibraryError
from .recommend import leave_one_out
from .records import Library
from .sources import Fetched, FetchError, SourceHealth, SourceOptions, fetch_source, source_kind
from .store import LibraryStore, Pointer, VersionRef
from .verify import VerifyReport, verify_raw

__all__ = [
    "EXIT_RETRY",
    "SOURCE_CREDENTIALS_PREFIX",
    "FetchConfig",
    "load_config",
    "main",
    "result_document",
    "run_fetch",
    "size_limits",
    "termination_message",
]

log = logging.getLogger(__name__)

MiB = 1024 * 1024


def size_limits(limits: LibraryLimits) -> Limits:
    """The API's limits (MiB) as the reader's (bytes)."""
    return Limits(
        max_archive_bytes=limits.max_archive_mib * MiB,
        max_cases_bytes=limits.max_cases_mib * MiB,
        max_total_bytes=limits.max_total_mib * MiB,
    )


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
    stored: VersionRef | None = None
    """The stored version a withdraw reports (it reads no library)."""
    pointer: Pointer | None = None
    pointer_uri: str | None = None
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
    pvc_root = Path(environ.get(pod_env.PVC_ROOT) or pod_env.DEFAULT_PVC_ROOT)
    try:
        return LibraryStore(open_store(config.store, s3=s3, pvc_root=pvc_root), config.prefix)
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
    """Fetch, verify, store and (de)activate one library (or only withdraw it, ``action: withdraw``);
    returns ``(exit code, result document)``."""
    out = _Outcome()
    fetched_at = clock()
    store: LibraryStore | None = None
    try:
        store = _library_store(config, environ)
        if config.action == "withdraw":
            _withdraw(config, store, out, emit)
        else:
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
    if not out.ok:
        if out.health is None and config.action == "fetch":
            out.health = SourceHealth(source_kind(config.spec), "", reachable=False, message="not fetched")
        if out.pointer is None and store is not None:
            _read_pointer_after_failure(config, store, out)
    return code, result_document(config, out, fetched_at)


def _library_name(config: FetchConfig, out: _Outcome) -> str | None:
    """The library's name: as verified now, as the last fetch found it, or the built-in's name."""
    if out.report is not None and out.report.name:
        return out.report.name
    return config.library_name or config.spec.source.builtin


def _read_pointer_after_failure(config: FetchConfig, store: LibraryStore, out: _Outcome) -> None:
    """After a failure: which version stays active (best effort; the failure is what is reported)."""
    name = _library_name(config, out)
    if name is None:
        return
    try:
        out.pointer = store.read_pointer(name)
        out.pointer_uri = store.pointer_uri(name)
    except (LibraryError, ArtifactError) as exc:
        log.info("the active pointer of %s was not read after the failure: %s", name, exc)


def _withdraw(
    config: FetchConfig, store: LibraryStore, out: _Outcome, emit: Callable[[dict[str, Any]], None]
) -> None:
    """``action: withdraw``: this ModelLibrary's version out of the pointer, without the source."""
    name = _library_name(config, out)
    if name is None:
        raise LibraryError(
            LibraryReason.INVALID_SPEC,
            "withdraw needs the library's name (libraryName), which only a fetch finds out: the "
            "operator fetches instead when it does not know it",
        )
    out.stored = store.stored(name, config.spec.version)
    out.pointer_uri = store.pointer_uri(name)
    out.pointer = store.withdraw(name, config.spec.version, owner=config.owner)
    if out.stored is not None:
        out.stored_uri, out.checksum = out.stored.uri, out.stored.checksum
    held = out.pointer.active if out.pointer is not None else None
    out.reason = LibraryReason.INACTIVE
    out.message = f"{name} {config.spec.version} is not active (spec.active is false)" + (
        f"; ModelLibrary {held.owner} holds the active version {held.version}"
        if held is not None and held.owner != config.owner
        else ""
    )
    emit({"event": "pointer", "active": False, "pointer": out.pointer.to_json() if out.pointer else None})


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
    limits = size_limits(config.size_limits)
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
        _refuse_protected_holder(config, store, library, ref.uri, out)
        out.pointer = store.activate(library.name, ref, owner=config.owner)
        out.reason = LibraryReason.ACTIVE
        out.message = f"{what} and active (pointer {out.pointer_uri})"
    else:
        out.pointer = store.withdraw(library.name, library.version, owner=config.owner)
        out.reason = LibraryReason.INACTIVE
        out.message = f"{what} and stored, not active (spec.active is false)"
    pointer = out.pointer.to_json() if out.pointer else None
    emit({"event": "pointer", "active": config.spec.active, "pointer": pointer})


def _refuse_protected_holder(
    config: FetchConfig, store: LibraryStore, library: Library, stored_uri: str, out: _Outcome
) -> None:
    """``ActiveConflict`` when another ModelLibrary that still wants to be active holds the pointer.

    An owner that is not protected (deleted, or no longer ``active: true``) is replaced: the pointer
    would otherwise stay with a ModelLibrary nobody can change any more.
    """
    current = store.read_pointer(library.name)
    holder = current.active if current is not None else None
    if holder is None or holder.owner in (None, config.owner) or holder.owner not in config.protected_owners:
        return
    out.pointer = current
    raise LibraryError(
        LibraryReason.ACTIVE_CONFLICT,
        f"ModelLibrary {holder.owner} holds the active version of library {library.name} ({holder.version}), "
        "and two ModelLibraries cannot both be the active version of one library name. This version "
        f"({library.version}) is verified and stored ({stored_uri}); it becomes active once {holder.owner} "
        "sets active: false or is deleted. To keep the other one, set active: false here.",
    )


def result_document(config: FetchConfig, out: _Outcome, fetched_at: datetime) -> dict[str, Any]:
    """The result in the API's status vocabulary (camelCase), ``None`` fields left out: the
    contract's :class:`~foresight.contract.library.FetchResult` as the operator reads it."""
    report, stored, pointer = out.report, out.stored, out.pointer
    held = pointer.active if pointer is not None else None
    doc: dict[str, Any] = {
        "phase": (LibraryPhase.READY if out.ok else LibraryPhase.FAILED).value,
        "reason": out.reason.value,
        "message": out.message,
        "retryable": out.retryable,
        "action": config.action,
        "generation": config.generation,
        # Without a verified report, the name the pointer was read under (the last fetch's, or the
        # built-in's): status keeps naming the library whose version stays active.
        "libraryName": report.name if report else _library_name(config, out) if stored or pointer else None,
        "version": report.version if report else stored.version if stored else None,
        "schemaVersion": report.schema_version if report else None,
        "checksum": out.checksum,
        "cases": report.cases if report else stored.cases if stored else None,
        "validCases": report.valid if report and report.checked else stored.cases if stored else None,
        "invalidCases": report.invalid if report and report.checked else 0 if stored else None,
        "invalidReasons": report.first_reasons(5, 300) if report and not report.ok else None,
        "models": report.models if report else stored.models if stored else None,
        "modelArtifacts": out.models or None,
        "fetchedTime": _iso(fetched_at),
        "source": out.health.to_json() | {"checkedTime": _iso(fetched_at)} if out.health else None,
        "storedUri": out.stored_uri,
        "pointer": out.pointer_uri,
        "active": held is not None and held.owner == config.owner,
        "activeVersion": held.version if held else None,
        "activeOwner": held.owner if held else None,
        "previousVersion": pointer.previous.version if pointer and pointer.previous else None,
        "quality": out.quality,
    }
    return {k: v for k, v in doc.items() if v is not None}


def termination_message(doc: Mapping[str, Any], limit: int = TERMINATION_MESSAGE_LIMIT) -> str:
    """Compact JSON under ``limit`` bytes that still parses (the contract's shrinking)."""
    return FetchResult.of(doc).termination_message(limit)


def execute(
    config_path: str,
    *,
    environ: Mapping[str, str],
    stdout: TextIO,
    workdir: Path | None = None,
    source_dir: str | None = None,
) -> tuple[int, dict[str, Any]]:
    """Load the config, run the Job, print and write the result; returns ``(exit code, result)``.

    ``source_dir`` overrides the config's ``configMapDir`` (the Job passes the mount on its command
    line, where a path is the pod's own).
    """

    def emit(event: dict[str, Any]) -> None:
        stdout.write(json.dumps(event, sort_keys=True, default=str) + "\n")
        stdout.flush()

    try:
        config = load_config(config_path)
        if source_dir is not None:
            config = config.model_copy(update={"config_map_dir": source_dir})
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
    parser.add_argument(
        "--source-dir", help="where spec.source.configMap is mounted (overrides configMapDir)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    code, _ = execute(args.config, environ=dict(os.environ), stdout=sys.stdout, source_dir=args.source_dir)
    return code
