"""ModelLibrary: a prebuilt library of models and capacity-planning cases, fetched, verified, activated.

Seed 000: preset libraries of database capacity-planning cases (workload in, recommended
architecture out) that a team browses, downloads, verifies and activates. Here a library is a
versioned archive from a built-in name, an HTTP(S) URL, an S3 URI or a ConfigMap; the operator
fetches and verifies it and makes ModelVersions of the models it carries.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

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

__all__ = ["MODEL_LIBRARY", "ModelLibrarySpec", "ModelLibraryStatus"]


class LibraryPhase(StrEnum):
    """``status.phase`` values the operator writes today (the fetch controller adds more)."""

    PENDING = "Pending"
    FAILED = "Failed"


class LibraryReason(StrEnum):
    FETCHING = "Fetching"
    FETCH_FAILED = "FetchFailed"
    CHECKSUM_MISMATCH = "ChecksumMismatch"
    ACTIVE = "Active"
    INACTIVE = "Inactive"


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
        description="builtin: a library shipped in the runtime image, e.g. `capacity-planning`.",
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


class ModelLibraryStatus(StatusBase):
    phase: LibraryPhase | None = Field(
        default=None, description="phase: a one-word summary for `kubectl get`."
    )
    cases: int | None = Field(default=None, ge=0, description="cases: capacity-planning cases carried.")
    models: int | None = Field(default=None, ge=0, description="models: models carried.")
    checksum: str | None = Field(default=None, description="checksum: sha256 of what was fetched.")
    active: bool = Field(default=False, description="active: the library is in use.")
    fetched_time: datetime | None = Field(default=None, description="fetchedTime: when it was fetched.")


MODEL_LIBRARY = KindInfo(
    kind="ModelLibrary",
    plural="modellibraries",
    short_names=("mlib",),
    printer_columns=ready_columns(
        column("Version", ".spec.version"),
        column("Cases", ".status.cases", "integer"),
        column("Active", ".status.active", "boolean"),
    ),
    spec_model=ModelLibrarySpec,
    status_model=ModelLibraryStatus,
    description="ModelLibrary fetches and verifies a prebuilt library of models and capacity-planning "
    "cases and makes ModelVersions of its models.",
    spec_validations=MODEL_LIBRARY_RULES,
)
