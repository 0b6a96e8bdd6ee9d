"""Pieces shared by every Foresight API kind: the base model, conditions, resources, placement.

Everything here is torch-free and I/O-free: the operator image imports it, and so does
``foresight validate`` on a laptop. Field descriptions are the user documentation: they end up
in the generated CRDs and therefore in ``kubectl explain``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from .durations import DURATION_PATTERN
from .rules import cel, field_rules, matches, not_matching

GROUP = "foresight.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "foresight"

# Kubernetes resource quantities ("500m", "2", "4Gi").
QUANTITY_PATTERN = r"^([0-9]+(\.[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
LABEL_NAME_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
HTTP_URL_PATTERN = r"^https?://[^\s/?#]+([/?#]\S*)?$"
"""http(s), a host, then an optional path / query without spaces."""

NOT_BLANK = matches(r"\S", "must not be blank (it holds only whitespace)")
NO_DOT_DOT = not_matching(
    r"(^|/)([.]|%2[eE]){2}(/|$)",
    "must not contain a `..` path segment (it would point outside the store or volume): "
    "write the path from the root of the bucket, claim or directory",
)
PROMETHEUS_RESERVED = not_matching(
    r"^__", "label names starting with `__` are reserved for Prometheus' internal use: pick another name"
)

# Go duration strings ("15m", "1h30m", "720h"): the Kubernetes convention (metav1.Duration), and
# the only form CEL's duration() understands, so cross-field rules can compare them. Every field of
# this type also carries an `at_least` minimum of its own (a step of 0s would divide by zero).
Duration = Annotated[str, Field(pattern=DURATION_PATTERN, max_length=32)]
Quantity = Annotated[str, Field(pattern=QUANTITY_PATTERN, max_length=32)]
PositiveQuantity = Annotated[Quantity, matches("[1-9]", "must be more than 0")]
ResourceName = Annotated[str, Field(pattern=DNS_LABEL_PATTERN, min_length=1, max_length=63)]
Query = Annotated[str, Field(min_length=1, max_length=4096), NOT_BLANK]
"""A PromQL expression."""
HttpUrl = Annotated[str, Field(pattern=HTTP_URL_PATTERN, max_length=2048), NO_DOT_DOT]
LabelName = Annotated[str, Field(pattern=LABEL_NAME_PATTERN, max_length=63), PROMETHEUS_RESERVED]
"""A Prometheus label name that Prometheus leaves to users."""
STORE_URI_PATTERN = (
    r"^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?|pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?/.*|file:///.*)$"
)
StoreUri = Annotated[str, Field(pattern=STORE_URI_PATTERN, max_length=1024), NO_DOT_DOT]
"""Where an artifact store lives: ``s3://bucket/prefix``, ``pvc://claim/path`` or ``file:///path``."""
ImageReference = Annotated[
    str, not_matching(r"\s", "must not contain whitespace: an image reference is one word")
]
S3Endpoint = Annotated[
    str,
    Field(max_length=512, pattern=r"^\S+$"),
    not_matching("://", "is host:port without a scheme (set insecure: true for plain HTTP)"),
]


class ApiModel(BaseModel):
    """Base of every spec / status model: camelCase on the wire, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=True,
        validate_default=True,
        # JSON, and so the API server, has no NaN or infinity; a YAML `.nan` must not slip through
        # a bound such as `ge=0` (NaN compares false with everything, infinity passes `ge`).
        allow_inf_nan=False,
    )

    def to_wire(self) -> dict[str, Any]:
        """The object as it appears in YAML / the API (camelCase, unset optionals left out)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


# --- conditions -------------------------------------------------------------------------------


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class ConditionType(StrEnum):
    """Condition types shared by every kind."""

    READY = "Ready"
    """The resource has done what its spec asks (the one condition dashboards and Argo CD read)."""
    PROGRESSING = "Progressing"
    """Work is under way (a run, a rollout, a fetch)."""
    DEGRADED = "Degraded"
    """Repeated temporary failures: the operator keeps retrying with backoff."""
    ACCEPTED = "Accepted"
    """The spec is valid (kinds whose controller comes in a later version)."""


class Reason(StrEnum):
    """Reasons shared by every kind; kinds add their own next to their types."""

    RECONCILED = "Reconciled"
    INVALID_SPEC = "InvalidSpec"
    PENDING = "Pending"
    RUNNING = "Running"
    SUSPENDED = "Suspended"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    TEMPORARY_FAILURE = "TemporaryFailure"
    SECRET_NOT_FOUND = "SecretNotFound"
    ACCEPTED = "Accepted"
    """A kind whose controller comes later: the spec is valid."""
    RECOVERED = "Recovered"
    """``Degraded`` back to False: a run succeeded after failures."""
    UNSUPPORTED_URI = "UnsupportedURI"
    """A storage URI the cluster cannot use (``file://`` outside local mode)."""
    API_ERROR = "ApiError"
    """The Kubernetes API failed (retried)."""
    API_REJECTED = "ApiRejected"
    """The Kubernetes API refused a request (403 / 422): retried slowly until RBAC or the operator
    is fixed."""
    STATUS_CONFLICT = "StatusConflict"
    CHILD_CONFLICT = "ChildConflict"
    """A child's name is taken by an object this resource does not own."""
    CHILD_TERMINATING = "ChildTerminating"


class Condition(ApiModel):
    """The Kubernetes condition shape (metav1.Condition)."""

    type: str = Field(
        description="type: the aspect this condition reports (Ready, Progressing, Degraded).",
        min_length=1,
        max_length=316,
    )
    status: ConditionStatus = Field(description="status: True, False or Unknown.")
    reason: str = Field(
        description="reason: a CamelCase word a program can switch on.",
        min_length=1,
        max_length=1024,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
    )
    message: str = Field(
        default="",
        description="message: what happened and, when something is wrong, what to change.",
        max_length=32768,
    )
    last_transition_time: datetime = Field(description="lastTransitionTime: when status last changed.")
    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="observedGeneration: the metadata.generation this condition was computed from.",
    )


Conditions = Annotated[
    list[Condition],
    Field(
        default_factory=list,
        description="conditions: the latest observations of the resource's state, one per type.",
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    ),
]


class StatusBase(ApiModel):
    """Fields every status carries."""

    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="observedGeneration: the metadata.generation the operator last reconciled.",
    )
    phase: str | None = Field(default=None, description="phase: a one-word summary for `kubectl get`.")
    conditions: Conditions


# --- shared spec pieces ---------------------------------------------------------------------


class Resources(ApiModel):
    """Compute for the pods a resource starts."""

    cpu: PositiveQuantity = Field(
        default="500m", description="cpu: CPU request (a Kubernetes quantity, more than 0)."
    )
    memory: PositiveQuantity = Field(
        default="1Gi",
        description="memory: memory request, also the limit, more than 0 "
        "(memory is not compressible: a pod over it is killed, never throttled).",
    )
    cpu_limit: PositiveQuantity | None = Field(
        default=None,
        description="cpuLimit: optional CPU limit, more than 0; unset "
        "means no limit (throttling slows training more than it helps).",
    )
    gpu: int = Field(
        default=0,
        ge=0,
        le=16,
        description="gpu: number of `nvidia.com/gpu` per pod; 0 runs on CPU (every code path works on CPU).",
    )


class Toleration(ApiModel):
    """A pod toleration (core/v1 Toleration)."""

    # The pod-level rules of core/v1, checked here so that a bad toleration is refused at apply
    # instead of every run's pod being refused by the API server later.
    model_config = ConfigDict(
        json_schema_extra=field_rules(
            cel(
                "self.operator == 'Exists' || (has(self.key) && self.key != '')",
                "an empty key matches every taint and needs operator Exists",
                field_path=".key",
            ),
            cel(
                "self.operator != 'Exists' || !has(self.value) || self.value == ''",
                "value must be empty with operator Exists",
                field_path=".value",
            ),
            cel(
                "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
                "tolerationSeconds applies to effect NoExecute only",
                field_path=".tolerationSeconds",
            ),
        )
    )

    key: str | None = Field(
        default=None,
        max_length=316,
        description="key: the taint key; empty with operator Exists matches every taint.",
    )
    operator: Literal["Exists", "Equal"] = Field(default="Equal", description="operator: Exists or Equal.")
    value: str | None = Field(default=None, max_length=63, description="value: the taint value (Equal).")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="effect: the taint effect to match; empty matches all effects."
    )
    toleration_seconds: int | None = Field(
        default=None, ge=0, description="tolerationSeconds: how long a NoExecute taint is tolerated."
    )


class Placement(ApiModel):
    """Where the pods of a resource may run."""

    node_selector: dict[str, Annotated[str, Field(max_length=63, pattern=LABEL_VALUE_PATTERN)]] = Field(
        default_factory=dict,
        max_length=64,
        description="nodeSelector: node labels the pods require, e.g. `nvidia.com/gpu.product: NVIDIA-H100`.",
    )
    tolerations: list[Toleration] = Field(
        default_factory=list,
        max_length=32,
        description="tolerations: taints the pods tolerate (GPU nodes are often tainted).",
    )
    priority_class_name: str | None = Field(
        default=None,
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description="priorityClassName: the pods' PriorityClass.",
    )
    service_account_name: ResourceName | None = Field(
        default=None, description="serviceAccountName: the pods' ServiceAccount; the runtime needs no RBAC."
    )


class ImageOverride(ApiModel):
    """Which runtime image the pods run (all kinds share one image; override per resource)."""

    image: ImageReference | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        description="image: the runtime image; unset uses the operator's default (FORESIGHT_RUNTIME_IMAGE).",
    )
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        default="IfNotPresent", description="pullPolicy: image pull policy."
    )


class SecretKeyRef(ApiModel):
    """A key of a Secret in the resource's namespace. Secret values never appear in specs or status."""

    name: ResourceName = Field(description="name: the Secret's name.")
    key: str = Field(
        description="key: the key inside the Secret.",
        min_length=1,
        max_length=253,
        pattern=r"^[-._a-zA-Z0-9]+$",
    )


class StoreRef(ApiModel):
    """Where artifacts (models, checkpoints, datasets) live: a PVC / directory or S3-compatible storage."""

    uri: StoreUri = Field(
        default="pvc://foresight-artifacts/",
        description="uri: `pvc://<claim>/<path>` (the default: a PersistentVolumeClaim mounted "
        "into the pods), `s3://<bucket>/<prefix>` (S3 / MinIO) or `file:///<path>` "
        "(local mode only); no `..` segments.",
    )
    endpoint: S3Endpoint | None = Field(
        default=None,
        description="endpoint: S3 endpoint `host:port` (MinIO), without a scheme (`insecure` picks "
        "plain HTTP); unset means AWS S3.",
    )
    region: str = Field(default="us-east-1", max_length=64, description="region: S3 region.")
    insecure: bool = Field(default=False, description="insecure: use plain HTTP to the S3 endpoint.")
    credentials_secret: ResourceName | None = Field(
        default=None,
        description="credentialsSecret: a Secret with keys `accessKey` and `secretKey` for S3; "
        "mounted into the pods, never read into status.",
    )


class RunPolicy(ApiModel):
    """How the Jobs of a resource run (the Kubeflow runPolicy / batch/v1 Job knobs)."""

    backoff_limit: int = Field(
        default=3, ge=0, le=100, description="backoffLimit: pod retries before the run is marked failed."
    )
    active_deadline_seconds: int | None = Field(
        default=None,
        ge=60,
        le=365 * 86400,
        description="activeDeadlineSeconds: wall-clock limit of one run, at least 60 "
        "(starting a pod alone takes seconds: a shorter limit fails every run).",
    )
    ttl_seconds_after_finished: int | None = Field(
        default=None,
        ge=0,
        le=365 * 86400,
        description="ttlSecondsAfterFinished: delete a finished run's Job after this many seconds.",
    )
    suspend: bool = Field(
        default=False,
        description="suspend: true stops starting pods (running ones are "
        "stopped, as for a suspended Job); false resumes.",
    )


@dataclass(frozen=True)
class KindInfo:
    """Static facts about a kind, used to generate its CRD (not part of any object)."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    printer_columns: tuple[dict[str, Any], ...]
    spec_model: type[BaseModel]
    status_model: type[BaseModel]
    description: str
    spec_validations: tuple[dict[str, str], ...] = field(default=())
    """CEL rules on the whole spec (need oldSelf or several fields)."""

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


def ready_columns(*middle: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """Printer columns: Ready, Phase, the kind's own, Age."""
    return (
        {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        *middle,
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    )


def column(
    name: str, json_path: str, type_: str = "string", *, priority: int = 0, description: str | None = None
) -> dict[str, Any]:
    col: dict[str, Any] = {"name": name, "type": type_, "jsonPath": json_path}
    if priority:
        col["priority"] = priority
    if description:
        col["description"] = description
    return col
