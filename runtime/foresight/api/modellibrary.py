"""ModelLibrary: a prebuilt library of models and capacity-planning cases, fetched, verified, activated.

Seed 000: preset libraries of database capacity-planning cases (workload in, recommended
architecture out) that a team browses, downloads, verifies and activates. Here a library is a
versioned archive from a built-in name, an HTTP(S) URL, an S3 URI or a ConfigMap (the format:
docs/library-format.md); a Job of the runtime image (``foresight library fetch``) fetches it,
checks its checksum and every case against the schema, stores the verified version in the
artifact store and switches the library's one active-version pointer in a single write; the
previous version stays stored for rollback.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from .meta import (
    NO_DOT_DOT,
    ApiModel,
    HttpUrl,
    ImageOverride,
    KindInfo,
    StatusBase,
    StoreRef,
    column,
    ready_columns,
)
from .rules import cel

__all__ = [
    "MODEL_LIBRARY",
    "LibraryLimits",
    "LibraryPhase",
    "LibraryQuality",
    "LibraryReason",
    "LibrarySourceHealth",
    "ModelLibrarySpec",
    "ModelLibraryStatus",
]


class LibraryPhase(StrEnum):
    """``status.phase`` values."""

    PENDING = "Pending"
    """Waiting to fetch: for a Secret or the source ConfigMap, or for an older fetch Job to stop."""
    FETCHING = "Fetching"
    """A fetch Job runs (or withdraws the library, for ``active: false``)."""
    READY = "Ready"
    """Verified and stored; the active version when ``active: true``, withdrawn when false."""
    RETRYING = "Retrying"
    """The last fetch failed in a way a retry can fix (source or store unreachable); the next
    attempt is at ``nextRetryTime``, the previous active version stays active meanwhile."""
    CONFLICT = "Conflict"
    """Verified and stored, but another ModelLibrary holds the active version of the same library
    name (``activeOwner``); it becomes active once that one withdraws or is deleted."""
    FAILED = "Failed"
    """A verdict no retry changes (checksum, schema, size...): fix the source or the spec."""


class LibraryReason(StrEnum):
    """Condition reasons; the fetch Job's result names one of them (``reason``)."""

    FETCHING = "Fetching"
    WITHDRAWING = "Withdrawing"
    """``active: false``: the Job takes this library's version out of the active pointer."""
    WAITING = "Waiting"
    """An older fetch Job of this ModelLibrary is still stopping (one fetch at a time)."""
    CONFIG_MAP_NOT_FOUND = "ConfigMapNotFound"
    """The ConfigMap of ``spec.source.configMap`` (or its key) does not exist yet: the fetch waits."""
    FETCH_FAILED = "FetchFailed"
    """Something unexpected went wrong in the fetch Job (its log has the details)."""
    CHECKSUM_MISMATCH = "ChecksumMismatch"
    ACTIVE = "Active"
    """Verified, stored, and the library's active-version pointer names this version."""
    INACTIVE = "Inactive"
    """Verified and stored, but not the active version (``active: false``)."""
    SOURCE_UNREACHABLE = "SourceUnreachable"
    """The URL / S3 endpoint could not be reached or answered with a server error (retried)."""
    SOURCE_NOT_FOUND = "SourceNotFound"
    """The source answered, but holds nothing at that URL / key / ConfigMap key."""
    ACCESS_DENIED = "AccessDenied"
    UNKNOWN_BUILTIN = "UnknownBuiltin"
    INVALID_ARCHIVE = "InvalidArchive"
    """Not a .tar.gz or JSON library, malformed JSON, or no manifest."""
    UNSAFE_ARCHIVE = "UnsafeArchive"
    """A member escapes the archive root, is a link or a device, or appears twice."""
    TOO_LARGE = "TooLarge"
    INVALID_MANIFEST = "InvalidManifest"
    INVALID_CASES = "InvalidCases"
    """At least one case fails the schema or a consistency rule (the first reasons are in status)."""
    INVALID_MODELS = "InvalidModels"
    EMPTY_LIBRARY = "EmptyLibrary"
    VERSION_MISMATCH = "VersionMismatch"
    """The library's manifest names another name or version than the spec pins."""
    VERSION_CONFLICT = "VersionConflict"
    """This version is already stored with different content: a changed library needs a new version."""
    STORE_UNAVAILABLE = "StoreUnavailable"
    ACTIVE_CONFLICT = "ActiveConflict"
    """Another ModelLibrary already holds the active version of the same library name."""
    INVALID_SPEC = "InvalidSpec"


class ConfigMapSource(ApiModel):
    name: str = Field(
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253, description="name: the ConfigMap."
    )
    key: str = Field(
        default="library.json",
        min_length=1,
        max_length=253,
        pattern=r"^[-._a-zA-Z0-9]+$",
        description="key: the key holding the library.",
    )


class LibrarySource(ApiModel):
    """Exactly one of builtin, url, s3 or configMap."""

    builtin: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][-a-z0-9]*$",
        max_length=63,
        description="builtin: a library shipped in the runtime image: `postgresql-oltp` or `mysql-tidb` "
        "(`foresight library list` shows them with their versions).",
    )
    url: HttpUrl | None = Field(default=None, description="url: an HTTP(S) archive (no `..` path segments).")
    s3: Annotated[str, NO_DOT_DOT] | None = Field(
        default=None,
        pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+",
        max_length=1024,
        description="s3: an object in S3 / MinIO, `s3://<bucket>/<key>` (no `..` segments).",
    )
    store: StoreRef | None = Field(default=None, description="store: endpoint and credentials for s3.")
    config_map: ConfigMapSource | None = Field(
        default=None, description="configMap: a library in a ConfigMap."
    )


class LibraryLimits(ApiModel):
    """How large a library may be (refused as ``TooLarge`` beyond, before it is parsed)."""

    max_archive_mib: int = Field(
        default=64, ge=1, le=4096, description="maxArchiveMib: the file as fetched, in MiB (64)."
    )
    max_cases_mib: int = Field(
        default=16,
        ge=1,
        le=1024,
        description="maxCasesMib: the cases file or single document, in MiB (16: about 20,000 cases).",
    )
    max_total_mib: int = Field(
        default=256, ge=1, le=16384, description="maxTotalMib: everything in an archive, uncompressed (256)."
    )


class ModelLibrarySpec(ApiModel):
    source: LibrarySource = Field(description="source: where the library comes from.")
    version: str = Field(
        min_length=1,
        max_length=63,
        pattern=r"^[A-Za-z0-9][-A-Za-z0-9_.+]*$",
        description="version: the library version, e.g. `2026.11` (letters, digits, `-_.+`).",
    )
    sha256: str | None = Field(
        default=None,
        pattern=r"^[a-f0-9]{64}$",
        description="sha256: expected checksum of the archive; required for url and s3 sources.",
    )
    active: bool = Field(
        default=True, description="active: its cases are offered to the runtime and its ModelVersions exist."
    )
    store: StoreRef = Field(
        default_factory=StoreRef,
        description="store: where verified versions and the active pointer live, under "
        "`modellibraries/<namespace>/<library>/`. ForecastTasks read a library's active version from "
        "their own spec.artifacts store, so keep the two the same (both default to "
        "`pvc://foresight-artifacts/`).",
    )
    limits: LibraryLimits = Field(
        default_factory=LibraryLimits, description="limits: size limits of the library."
    )
    runtime: ImageOverride = Field(default_factory=ImageOverride, description="runtime: image override.")


MODEL_LIBRARY_RULES = (
    cel(
        "[has(self.source.builtin), has(self.source.url), has(self.source.s3), has(self.source.configMap)]"
        ".filter(x, x).size() == 1",
        "source needs exactly one of builtin, url, s3 or configMap",
        field_path=".source",
    ),
    cel(
        "!(has(self.source.url) || has(self.source.s3)) || has(self.sha256)",
        "sha256 is required for url and s3 sources (a download is only trusted when verified)",
        field_path=".sha256",
    ),
)


class LibrarySourceHealth(ApiModel):
    """What the last fetch saw of the source."""

    kind: Literal["builtin", "url", "s3", "configMap"] = Field(description="kind: the source kind.")
    location: str = Field(
        default="",
        max_length=2048,
        description="location: where it was fetched from (a URL without its query string or credentials).",
    )
    reachable: bool = Field(description="reachable: the source answered (whatever it held).")
    http_status: int | None = Field(default=None, description="httpStatus: the HTTP status of a url source.")
    message: str | None = Field(
        default=None, max_length=1024, description="message: what went wrong, if anything."
    )
    checked_time: datetime | None = Field(default=None, description="checkedTime: when it was checked.")


class LibraryQuality(ApiModel):
    """Leave-one-out quality of the nearest-case recommender on this library's own cases."""

    held_out: int = Field(ge=0, description="heldOut: cases predicted from all the others.")
    k: int = Field(ge=1, description="k: neighbours per recommendation.")
    architecture_accuracy: float = Field(
        ge=0,
        le=1,
        description="architectureAccuracy: share of held-out cases whose architecture_type was "
        "recommended (a case outside the coverage of the others counts as wrong).",
    )
    baseline_accuracy: float = Field(
        ge=0,
        le=1,
        description="baselineAccuracy: the same for always answering the most common architecture.",
    )
    node_count_mae: float | None = Field(
        default=None,
        alias="nodeCountMAE",
        ge=0,
        description="nodeCountMAE: mean absolute error of node_count where an answer was given.",
    )
    baseline_node_count_mae: float | None = Field(
        default=None,
        alias="baselineNodeCountMAE",
        ge=0,
        description="baselineNodeCountMAE: the same for always answering the median node_count.",
    )
    abstained: int = Field(
        default=0, ge=0, description="abstained: held-out cases outside the others' coverage."
    )


class ModelLibraryStatus(StatusBase):
    phase: LibraryPhase | None = Field(
        default=None, description="phase: a one-word summary for `kubectl get`."
    )
    library_name: str | None = Field(
        default=None, max_length=63, description="libraryName: the name in the library's manifest."
    )
    schema_version: int | None = Field(default=None, ge=1, description="schemaVersion: the library format.")
    cases: int | None = Field(default=None, ge=0, description="cases: capacity-planning cases carried.")
    valid_cases: int | None = Field(
        default=None, ge=0, description="validCases: cases that passed verification."
    )
    invalid_cases: int | None = Field(default=None, ge=0, description="invalidCases: cases that failed it.")
    invalid_reasons: list[str] = Field(
        default_factory=list,
        max_length=10,
        description="invalidReasons: the first reasons, each naming the case id and the field.",
    )
    models: int | None = Field(default=None, ge=0, description="models: models carried.")
    checksum: str | None = Field(default=None, description="checksum: sha256 of what was fetched.")
    active: bool = Field(default=False, description="active: the library is in use.")
    active_version: str | None = Field(
        default=None, max_length=63, description="activeVersion: the version the active pointer names."
    )
    previous_version: str | None = Field(
        default=None,
        max_length=63,
        description="previousVersion: the version it replaced, kept for rollback.",
    )
    pointer: str | None = Field(
        default=None,
        max_length=2048,
        description="pointer: the artifact-store object naming the active version (changed in one write).",
    )
    stored_uri: str | None = Field(
        default=None, max_length=2048, description="storedUri: where this verified version is stored."
    )
    source: LibrarySourceHealth | None = Field(default=None, description="source: health of the source.")
    quality: LibraryQuality | None = Field(
        default=None, description="quality: leave-one-out quality of the recommender on this library."
    )
    fetched_time: datetime | None = Field(default=None, description="fetchedTime: when it was fetched.")
    active_owner: str | None = Field(
        default=None,
        max_length=317,
        description="activeOwner: the ModelLibrary (`namespace/name`) whose version the pointer names.",
    )
    fetch_job: str | None = Field(
        default=None, max_length=63, description="fetchJob: the Job of the last (or current) fetch."
    )
    consecutive_failures: int = Field(
        default=0, ge=0, description="consecutiveFailures: fetches in a row that failed and are retried."
    )
    next_retry_time: datetime | None = Field(
        default=None, description="nextRetryTime: when a retryable failure is fetched again."
    )
    model_versions: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="modelVersions: the ModelVersions made of the models it carries (while active).",
    )


MODEL_LIBRARY = KindInfo(
    kind="ModelLibrary",
    plural="modellibraries",
    short_names=("mlib",),
    printer_columns=ready_columns(
        column("Version", ".spec.version"),
        column("Active", ".status.active", "boolean"),
        column("Cases", ".status.cases", "integer"),
        column("Valid", ".status.validCases", "integer"),
        column("Library", ".status.libraryName", priority=1),
        column("Active-Version", ".status.activeVersion", priority=1),
        column("Accuracy", ".status.quality.architectureAccuracy", "number", priority=1),
    ),
    spec_model=ModelLibrarySpec,
    status_model=ModelLibraryStatus,
    description="ModelLibrary fetches and verifies a prebuilt library of models and capacity-planning "
    "cases and makes ModelVersions of its models.",
    spec_validations=MODEL_LIBRARY_RULES,
)
