"""Verification of a library: every case against the schema and the format's rules, the models' files.

What :func:`verify_raw` checks, beyond reading (:mod:`foresight.library.archive`):

- the manifest against ``manifest.schema.json`` (and, when the caller pins them, its name and version);
- every case against ``case.schema.json``: types, required fields, ranges (no negative QPS, at least
  one node...), the architecture vocabulary;
- unique case ids, and ``source`` equal to the library's name;
- consistency rules the schema cannot say (docs/library-format.md, "Rules"): tps at most qps; a
  ``standalone`` case has one node, one shard and no replica; ``primary_standby`` and
  ``read_write_split`` are one shard with at least one replica; ``distributed`` has at least two
  shards; a case that needs high availability or a read/write split has at least one replica;
- every model's files are present with the sha256 the manifest gives, and hold a ``config.json``;
- at least one case.

A library with any invalid case is invalid as a whole (nothing partial is ever activated); the
report keeps the counts and the first findings, each naming the case id, its position and the field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .archive import Limits, RawLibrary, file_sha256, read_library
from .errors import LibraryError, LibraryReason
from .records import MANIFEST_FILE, SCHEMA_VERSION, Case, Library, Manifest
from .schema import case_errors, manifest_errors

__all__ = ["MAX_FINDINGS", "Finding", "VerifyReport", "verify_path", "verify_raw"]

MAX_FINDINGS = 20
"""Findings kept in a report; the counts cover every case."""


@dataclass(frozen=True)
class Finding:
    """One problem: which case (id and position in the file), which field, what is wrong."""

    field: str
    message: str
    case_id: str | None = None
    index: int | None = None

    def __str__(self) -> str:
        where = ""
        if self.case_id is not None:
            where = f"case {self.case_id}" + (f" (#{self.index})" if self.index is not None else "") + ": "
        elif self.index is not None:
            where = f"case #{self.index}: "
        return f"{where}{self.field}: {self.message}"


@dataclass
class VerifyReport:
    """The verdict on one library, with what a status or a terminal shows."""

    reason: LibraryReason | None
    """``None`` when the library is valid; otherwise why not."""
    message: str
    form: str = ""
    checksum: str = ""
    size_bytes: int = 0
    name: str | None = None
    version: str | None = None
    schema_version: int | None = None
    cases: int = 0
    valid: int = 0
    invalid: int = 0
    checked: bool = False
    """Whether the cases were checked one by one (``valid`` / ``invalid`` mean something)."""
    models: int = 0
    findings: list[Finding] = field(default_factory=list)
    finding_count: int = 0
    warnings: list[str] = field(default_factory=list)
    library: Library | None = None
    raw: RawLibrary | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None

    def first_reasons(self, n: int = 5, width: int = 300) -> list[str]:
        return [str(f)[:width] for f in self.findings[:n]]

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": self.ok,
            "reason": self.reason.value if self.reason else None,
            "message": self.message,
            "form": self.form,
            "checksum": self.checksum,
            "sizeBytes": self.size_bytes,
            "name": self.name,
            "version": self.version,
            "schemaVersion": self.schema_version,
            "cases": self.cases,
            "validCases": self.valid,
            "invalidCases": self.invalid,
            "models": self.models,
            "findings": [str(f) for f in self.findings],
            "findingCount": self.finding_count,
            "warnings": self.warnings,
        }


def _consistency(case: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The format's rules a JSON Schema cannot express, on a case that passed the schema."""
    inp, out = case["input"], case["output"]
    problems: list[tuple[str, str]] = []
    if inp["tps"] > inp["qps"]:
        problems.append(
            (
                "input.tps",
                f"{inp['tps']} write transactions/s exceed qps {inp['qps']}: every "
                "transaction is at least one query",
            )
        )
    arch, shards, replicas, nodes = (
        out["architecture_type"],
        out["shard_count"],
        out["replica_count"],
        out["node_count"],
    )
    if arch == "standalone" and (nodes, shards, replicas) != (1, 1, 0):
        problems.append(
            (
                "output",
                f"a standalone architecture is 1 node, 1 shard, 0 replicas (got {nodes}, "
                f"{shards}, {replicas})",
            )
        )
    if arch in ("primary_standby", "read_write_split"):
        if shards != 1:
            problems.append(
                ("output.shard_count", f"{arch} keeps all data on one primary: shard_count must be 1")
            )
        if replicas < 1:
            problems.append(("output.replica_count", f"{arch} needs at least one replica"))
        if nodes < 1 + replicas:
            problems.append(
                ("output.node_count", f"{nodes} nodes cannot hold a primary and {replicas} replicas")
            )
    if arch == "distributed" and shards < 2:
        problems.append(("output.shard_count", "a distributed architecture has at least 2 shards"))
    if inp["need_high_availability"] and replicas < 1:
        problems.append(
            ("output.replica_count", "need_high_availability is true but there is no replica to fail over to")
        )
    if inp["need_read_write_split"] and replicas < 1:
        problems.append(
            ("output.replica_count", "need_read_write_split is true but there is no replica to read from")
        )
    return problems


def _check_models(raw: RawLibrary, manifest: Manifest, findings: list[Finding]) -> int:
    """Findings for the models' files; returns how many models are valid."""
    if manifest.models and raw.root is None:
        findings.append(
            Finding("models", "a single-document library cannot carry model files: use an archive")
        )
        return 0
    good = 0
    seen: set[str] = set()
    for model in manifest.models:
        label = f"models.{model.name}"
        before = len(findings)
        if model.name in seen:
            findings.append(Finding(label, "two models have this name"))
        seen.add(model.name)
        listed = {f.path for f in model.files}
        if "config.json" not in listed:
            findings.append(Finding(label, "lists no config.json (the model's configuration)"))
        for entry in model.files:
            rel = f"{model.path}/{entry.path}"
            if raw.root is None or rel not in raw.files:
                findings.append(Finding(label, f"file {rel} is listed but missing from the archive"))
                continue
            actual = file_sha256(raw.root / rel)
            if actual != entry.sha256:
                findings.append(
                    Finding(label, f"file {rel} has sha256 {actual}, the manifest says {entry.sha256}")
                )
            if entry.size is not None and raw.files[rel] != entry.size:
                findings.append(
                    Finding(label, f"file {rel} is {raw.files[rel]} bytes, the manifest says {entry.size}")
                )
        if len(findings) == before:
            good += 1
    return good


def verify_raw(
    raw: RawLibrary, *, expect_name: str | None = None, expect_version: str | None = None
) -> VerifyReport:
    """Verify a library that was read; the report carries the typed :class:`Library` when valid."""
    report = VerifyReport(
        reason=None, message="", form=raw.form, checksum=raw.checksum, size_bytes=raw.size_bytes, raw=raw
    )
    manifest = _check_manifest(raw, report, expect_name, expect_version)
    if manifest is None:
        return report
    if not raw.cases:
        return _fail(
            report,
            LibraryReason.EMPTY_LIBRARY,
            "the library holds no cases: a library without cases "
            "cannot recommend anything; add cases or fix the cases file it names",
        )
    findings, valid = _check_cases(raw.cases, manifest.name)
    report.valid, report.invalid, report.checked = valid, len(raw.cases) - valid, True
    model_findings: list[Finding] = []
    report.models = len(manifest.models)
    good_models = _check_models(raw, manifest, model_findings)
    all_findings = findings + model_findings
    report.findings = all_findings[:MAX_FINDINGS]
    report.finding_count = len(all_findings)
    if report.invalid:
        return _fail(
            report,
            LibraryReason.INVALID_CASES,
            f"{report.invalid} of {report.cases} cases are invalid "
            f"(first: {findings[0]}); nothing of this library is used until every case is valid",
        )
    if good_models < len(manifest.models):
        return _fail(
            report,
            LibraryReason.INVALID_MODELS,
            f"{len(manifest.models) - good_models} of "
            f"{len(manifest.models)} models are invalid (first: {model_findings[0]}); re-pack the "
            "library so the manifest's checksums match its files",
        )
    unlisted = _unlisted_files(raw, manifest)
    if unlisted:
        report.warnings.append(
            f"{len(unlisted)} files are not named by the manifest and are ignored "
            f"(first: {', '.join(unlisted[:3])})"
        )
    cases = tuple(Case.from_json(c) for c in raw.cases)
    report.library = Library(manifest=manifest, cases=cases, checksum=raw.checksum)
    report.message = (
        f"{report.cases} cases and {report.models} models verified; "
        f"architectures {report.library.architecture_counts()}"
    )
    return report


def _check_manifest(
    raw: RawLibrary, report: VerifyReport, expect_name: str | None, expect_version: str | None
) -> Manifest | None:
    """The manifest, or ``None`` with the report failed (schema, schema version, pinned name / version)."""
    problems = manifest_errors(raw.manifest)
    report.name = str(raw.manifest.get("name")) if raw.manifest.get("name") is not None else None
    report.version = str(raw.manifest.get("version")) if raw.manifest.get("version") is not None else None
    sv = raw.manifest.get("schemaVersion")
    report.schema_version = sv if isinstance(sv, int) and not isinstance(sv, bool) else None
    report.cases = len(raw.cases)
    if problems:
        report.findings = [Finding(f"{MANIFEST_FILE}: {path}", msg) for path, msg in problems[:MAX_FINDINGS]]
        report.finding_count = len(problems)
        if report.schema_version is not None and report.schema_version != SCHEMA_VERSION:
            _fail(
                report,
                LibraryReason.INVALID_MANIFEST,
                f"the library has schemaVersion "
                f"{report.schema_version}; this runtime reads schemaVersion {SCHEMA_VERSION}: use a runtime "
                "image that reads it, or a version of the library in this format",
            )
        else:
            _fail(
                report,
                LibraryReason.INVALID_MANIFEST,
                f"the manifest is invalid: {report.findings[0]}; "
                "fix library.json (docs/library-format.md lists its fields)",
            )
        return None
    manifest = Manifest.from_json(raw.manifest)
    if expect_name is not None and manifest.name != expect_name:
        _fail(
            report,
            LibraryReason.VERSION_MISMATCH,
            f"the library is named {manifest.name!r}, not {expect_name!r}: "
            "fix the source or the name you expect",
        )
        return None
    if expect_version is not None and manifest.version != expect_version:
        _fail(
            report,
            LibraryReason.VERSION_MISMATCH,
            f"the library is version {manifest.version!r} but "
            f"spec.version pins {expect_version!r}: set spec.version to {manifest.version!r} if that is "
            f"the version you mean, or point the source at version {expect_version!r}",
        )
        return None
    return manifest


def _check_cases(cases: Sequence[Any], library: str) -> tuple[list[Finding], int]:
    findings: list[Finding] = []
    seen: dict[str, int] = {}
    valid = 0
    for index, case in enumerate(cases):
        case_id = case.get("id") if isinstance(case, dict) and isinstance(case.get("id"), str) else None
        problems = case_errors(case)
        if not problems:
            problems = _consistency(case)
            if case["source"] != library:
                problems.append(("source", f"{case['source']!r} is not this library ({library!r})"))
            if case_id in seen:
                problems.append(("id", f"duplicate: case #{seen[case_id]} has the same id"))
        if case_id is not None:
            seen.setdefault(case_id, index)
        if problems:
            if len(findings) < MAX_FINDINGS:
                findings.extend(Finding(path, msg, case_id, index) for path, msg in problems[:3])
        else:
            valid += 1
    return findings[:MAX_FINDINGS], valid


def _unlisted_files(raw: RawLibrary, manifest: Manifest) -> list[str]:
    known = {
        MANIFEST_FILE,
        manifest.cases_path,
        "README.md",
        "LICENSE",
        "LICENCE",
        "verification.json",
        "MANIFEST.json",
    }
    for model in manifest.models:
        known.update(f"{model.path}/{f.path}" for f in model.files)
    return sorted(f for f in raw.files if f not in known)


def _fail(report: VerifyReport, reason: LibraryReason, message: str) -> VerifyReport:
    report.reason = reason
    report.message = message
    return report


def verify_path(
    path: Path,
    workdir: Path,
    *,
    limits: Limits | None = None,
    expect_name: str | None = None,
    expect_version: str | None = None,
) -> VerifyReport:
    """Read and verify the library at ``path``; reading failures become a report too."""
    try:
        raw = read_library(path, workdir, limits)
    except LibraryError as exc:
        return VerifyReport(reason=exc.reason, message=exc.message, checksum=_checksum_or_empty(path))
    return verify_raw(raw, expect_name=expect_name, expect_version=expect_version)


def _checksum_or_empty(path: Path) -> str:
    try:
        return file_sha256(path) if path.is_file() else ""
    except OSError:
        return ""
