"""A ModelLibrary's fetch Job: the config the operator renders, the result its pod leaves, exit codes.

The operator writes a :class:`FetchConfig` into the Job's ConfigMap; ``foresight library fetch
--config FILE`` (:mod:`foresight.library.job`) reads it, fetches and verifies the library, stores the
version and switches (or withdraws) the active pointer, and ends with a :class:`FetchResult` in its
termination message, which the operator folds into ``ModelLibrary.status``. Neither side imports the
other: they meet here.

The pod's environment carries only secrets and the result path:

- ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (:mod:`.s3`): credentials of an ``s3://`` store;
- :data:`SOURCE_CREDENTIALS_PREFIX` + the same names: credentials of an ``s3`` source
  (``spec.source.store.credentialsSecret``);
- ``FORESIGHT_TERMINATION_LOG`` (:mod:`.env`): where the result goes.

Exit status: 0 whenever the Job reached a verdict (a wrong checksum does not get better on retry),
:data:`EXIT_RETRY` when a retry can help (``SourceUnreachable``, ``StoreUnavailable``), 1 for anything
unexpected (the result then says ``FetchFailed``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from foresight.api.meta import ApiModel
from foresight.api.modellibrary import LibraryLimits, ModelLibrarySpec

from .termination import Doc, ResultMessage, Shrink, cut_message, keep_only

__all__ = [
    "EXIT_RETRY",
    "SOURCE_CREDENTIALS_PREFIX",
    "STATUS_FIELDS",
    "STORE_PREFIX",
    "FetchConfig",
    "FetchResult",
    "ModelArtifact",
    "store_prefix",
]

EXIT_RETRY = 75
"""EX_TEMPFAIL: the source or the store was unreachable; a later attempt may succeed."""
SOURCE_CREDENTIALS_PREFIX = "FORESIGHT_SOURCE_"
"""``FORESIGHT_SOURCE_AWS_ACCESS_KEY_ID`` / ``..._SECRET_ACCESS_KEY``: the credentials of an s3 source,
kept apart from the store's own ``AWS_*`` pair."""
STORE_PREFIX = "modellibraries"
"""Libraries live under ``<store>/modellibraries/<namespace>/<library>/`` (``versions/``, ``active.json``)."""


def store_prefix(namespace: str) -> str:
    """The key prefix of a namespace's libraries in a store: each namespace has its own pointers, so a
    ModelLibrary of one namespace never changes what another namespace's ForecastTasks read."""
    return f"{STORE_PREFIX}/{namespace}"


class FetchConfig(ApiModel):
    """The fetch Job's config file (YAML or JSON), rendered by the operator."""

    name: str = Field(description="name: the ModelLibrary (messages and the pointer's owner).")
    namespace: str = Field(default="default")
    generation: int | None = Field(default=None, description="generation: echoed in the result.")
    spec: ModelLibrarySpec
    action: Literal["fetch", "withdraw"] = Field(
        default="fetch",
        description="action: `fetch` (verify, store, then activate or withdraw as spec.active says) or "
        "`withdraw` (take the stored version out of the pointer; needs no source, only libraryName).",
    )
    library_name: str | None = Field(
        default=None,
        max_length=63,
        description="libraryName: the library's name as the last fetch found it (status.libraryName); "
        "withdraw needs it, and a fetch that fails before reading the library uses it to report which "
        "version stays active.",
    )
    protected_owners: list[str] = Field(
        default_factory=list,
        description="protectedOwners: ModelLibraries (`namespace/name`) that want to stay active: a "
        "pointer one of them holds is not taken over (ActiveConflict); any other owner is replaced.",
    )
    store: str = Field(
        description="store: where verified versions and the pointer go, `file:///dir` or "
        "`s3://bucket/prefix` (the operator resolves a PVC to its mount path)."
    )
    store_endpoint: str | None = Field(
        default=None, description="storeEndpoint: S3 `host:port` of an s3 store."
    )
    store_region: str = Field(default="us-east-1")
    store_insecure: bool = Field(default=False, description="storeInsecure: plain HTTP to the S3 endpoint.")
    prefix: str = Field(default=STORE_PREFIX, description="prefix: key prefix of libraries in the store.")
    config_map_dir: str | None = Field(
        default=None, description="configMapDir: where spec.source.configMap is mounted (one file per key)."
    )
    limits: LibraryLimits | None = Field(
        default=None, description="limits: size limits (default: spec.limits)."
    )
    timeout_seconds: float = Field(
        default=30.0, gt=0, le=600, description="timeoutSeconds: per HTTP/S3 request."
    )
    loo_max_held_out: int = Field(
        default=2000, ge=0, description="looMaxHeldOut: cases in the quality estimate."
    )

    @property
    def owner(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def size_limits(self) -> LibraryLimits:
        return self.limits if self.limits is not None else self.spec.limits


class ModelArtifact(BaseModel):
    """A model the library carries, as stored: what a ModelVersion names."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    name: str
    type: str = ""
    """The Foresight model type (``lstm``, ``gru``...)."""
    uri: str
    """The model's directory in the store, as the pod saw it (``file://`` under a PVC mount, or ``s3://``)."""
    sha256: str = ""
    """sha256 of the directory's MANIFEST.json (covers every file)."""


class FetchResult(ResultMessage):
    """What one fetch (or withdraw) did, in ``ModelLibrary.status``'s vocabulary (camelCase)."""

    phase: Literal["Ready", "Failed"] | None = None
    reason: str = ""
    """A :class:`~foresight.api.modellibrary.LibraryReason` (always written by the runtime)."""
    message: str = ""
    retryable: bool = False
    action: str | None = None
    generation: int | None = None
    library_name: str | None = None
    version: str | None = None
    schema_version: int | None = None
    checksum: str | None = None
    cases: int | None = None
    valid_cases: int | None = None
    invalid_cases: int | None = None
    invalid_reasons: list[str] | None = None
    models: int | None = None
    model_artifacts: list[ModelArtifact] | None = None
    model_artifact_count: int | None = None
    """Set instead of ``modelArtifacts`` when they did not fit into the message."""
    fetched_time: str | None = None
    source: dict[str, Any] | None = None
    """:class:`~foresight.api.modellibrary.LibrarySourceHealth` as JSON."""
    stored_uri: str | None = None
    pointer: str | None = None
    active: bool | None = None
    """This ModelLibrary's version is the one the pointer names."""
    active_version: str | None = None
    active_owner: str | None = None
    previous_version: str | None = None
    quality: dict[str, Any] | None = None
    """:class:`~foresight.api.modellibrary.LibraryQuality` as JSON."""

    @classmethod
    def shrink_steps(cls) -> Sequence[Shrink]:
        return (_count_models, _short_reasons, cut_message(800), keep_only(_ESSENTIAL, cut_strings=400))


_ESSENTIAL = ("phase", "reason", "message", "retryable", "action", "generation", "libraryName", "version",
              "checksum", "cases", "validCases", "invalidCases", "models", "active", "activeVersion",
              "activeOwner", "previousVersion", "pointer", "storedUri", "fetchedTime")  # fmt: skip


def _count_models(doc: Doc) -> Doc | None:
    if not doc.get("modelArtifacts"):
        return None
    out = dict(doc)
    out["modelArtifactCount"] = len(out.pop("modelArtifacts"))
    return out


def _short_reasons(doc: Doc) -> Doc | None:
    if not doc.get("invalidReasons"):
        return None
    return {**doc, "invalidReasons": [str(r)[:160] for r in doc["invalidReasons"][:3]]}


STATUS_FIELDS = (
    "libraryName",
    "schemaVersion",
    "cases",
    "validCases",
    "invalidCases",
    "invalidReasons",
    "models",
    "checksum",
    "active",
    "activeVersion",
    "activeOwner",
    "previousVersion",
    "pointer",
    "storedUri",
    "source",
    "quality",
    "fetchedTime",
)
"""The result fields ``ModelLibrary.status`` shows under the same name (each verdict replaces all of them)."""
