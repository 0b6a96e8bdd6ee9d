"""A ModelVersion's verify / optimise Job: the result its pod leaves and its exit codes.

``foresight model-job --config FILE`` exits 0 whenever it reached a verdict, negative ones
included (a checksum mismatch does not get better on retry), and :data:`EXIT_RETRY` when the
store was unavailable, so the Job's ``backoffLimit`` retries only what a retry can fix. Its
:class:`VerifyResult` replaces every result field of the ModelVersion's status.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from .termination import ResultMessage, Shrink, cut_message, keep_only

__all__ = ["EXIT_RETRY", "STATUS_FIELDS", "LatencySample", "OptimizedArtifact", "VerifyResult"]

EXIT_RETRY = 75
"""EX_TEMPFAIL: the store was unavailable; another pod may succeed."""


class _Part(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class OptimizedArtifact(_Part):
    """An artifact the optimise step wrote next to the original."""

    uri: str
    sha256: str
    size_bytes: int


class LatencySample(_Part):
    runtime: str
    batch_size: int
    p50_ms: float
    p99_ms: float


class VerifyResult(ResultMessage):
    """The verdict on one ModelVersion's artifact (and the optimised artifacts, when asked)."""

    reason: str | None = None
    """``Verified``, a :class:`~foresight.api.modelversion.ModelVersionReason`, or a store's reason
    (always written by the runtime)."""
    message: str | None = None
    verified: bool = False
    retryable: bool | None = None
    generation: int | None = None
    """The ModelVersion generation this verdict is for."""
    checksum: str | None = None
    size_bytes: int | None = None
    format: str | None = None
    onnx: OptimizedArtifact | None = None
    int8: OptimizedArtifact | None = None
    parity_max_abs_diff: float | None = None
    parity_passed: bool | None = None
    int8_parity_max_abs_diff: float | None = None
    sparsity: float | None = None
    latency: list[LatencySample] | None = None
    distillation: dict[str, Any] | None = None
    """A distilled student's comparison with its teacher (the API's ``Distilled``, as the
    training run measured it: see :mod:`foresight.training.tasks.distill`)."""
    verified_time: str | None = None

    @classmethod
    def shrink_steps(cls) -> Sequence[Shrink]:
        return (cut_message(1000), keep_only(_ESSENTIAL))


_ESSENTIAL = (
    "reason",
    "message",
    "verified",
    "retryable",
    "generation",
    "checksum",
    "sizeBytes",
    "verifiedTime",
)


STATUS_FIELDS = (
    "verified",
    "checksum",
    "sizeBytes",
    "onnx",
    "int8",
    "parityMaxAbsDiff",
    "sparsity",
    "latency",
    "distillation",
    "verifiedTime",
)
"""The result fields a ModelVersion's status shows (each verdict replaces all of them)."""
