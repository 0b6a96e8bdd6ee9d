"""The training runtime's errors, each mapped to a termination ``reason`` and a process exit code.

The operator never reads training logs: a failed pod's termination message carries ``reason``
(the ``TrainingJob`` condition reason) and ``message`` (what to do next), so every error here
names the data a user needs to fix the cause.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BadCredentialsError",
    "CheckpointMismatchError",
    "DataQualityError",
    "DatasetError",
    "NonFiniteLossError",
    "PromQLDatasetError",
    "PrometheusUnavailableError",
    "TrainingConfigError",
    "TrainingError",
    "WorkerJoinTimeoutError",
]


class TrainingError(Exception):
    """Base of the runtime's training errors."""

    reason: str = "TrainingFailed"
    """The ``TrainingJob`` condition reason written to the termination message."""
    exit_code: int = 1
    """Process exit code; distinct per error so a Job's pod failure policy can tell them apart."""
    retryable: bool = False
    """Whether restarting the pod can help (a join timeout can; a NaN loss repeats)."""

    def details(self) -> dict[str, Any]:
        """Extra fields of the failure's termination message (camelCase, JSON-ready)."""
        return {}


class TrainingConfigError(TrainingError):
    reason = "InvalidConfig"
    exit_code = 2


class DatasetError(TrainingError):
    reason = "DatasetNotFound"
    exit_code = 3


class NonFiniteLossError(TrainingError):
    """The loss became NaN or infinite; continuing would only write garbage weights."""

    reason = "NaNLoss"
    exit_code = 4

    def __init__(self, epoch: int, step: int, value: float) -> None:
        self.epoch = epoch
        self.step = step
        self.value = value
        super().__init__(
            f"loss is {value} at epoch {epoch}, step {step}: lower the learning rate, check the dataset "
            "for NaN/Inf values, or enable gradient clipping (hyperparameter gradClip)"
        )


class CheckpointMismatchError(TrainingError):
    """A checkpoint in the checkpoint location belongs to a different model architecture."""

    reason = "CheckpointMismatch"
    exit_code = 5

    def __init__(self, key: str, expected: str, found: str) -> None:
        self.key = key
        self.expected = expected
        self.found = found
        super().__init__(
            f"checkpoint {key!r} has fingerprint {found} but this job's model has {expected}: it was "
            "written by another model; point checkpoint.uri at an empty location or delete the old "
            "checkpoints (it is never loaded silently)"
        )


class WorkerJoinTimeoutError(TrainingError):
    """Not all DDP workers reached the rendezvous in time."""

    reason = "WorkerJoinTimeout"
    exit_code = 6
    retryable = True

    def __init__(
        self, world_size: int, rank: int, master_addr: str, master_port: int, timeout_s: float
    ) -> None:
        self.world_size = world_size
        self.rank = rank
        self.master_addr = master_addr
        self.master_port = master_port
        self.timeout_s = timeout_s
        super().__init__(
            f"rank {rank} waited {timeout_s:g}s for {world_size} workers at {master_addr}:{master_port} "
            "and not all joined: check that every worker pod is scheduled (GPU quota), that the headless "
            "Service resolves MASTER_ADDR, or raise distributed.joinTimeoutSeconds"
        )


class BadCredentialsError(TrainingError):
    """The object store refused the credentials, or they may not use the bucket (dataset, checkpoints, model).

    Built from ``foresight.artifacts``' :class:`~foresight.artifacts.errors.AccessDeniedError`
    (and its :class:`~foresight.artifacts.errors.InvalidCredentialsError`): the message names the
    endpoint, the bucket and the Secret to fix, never a key's value.
    """

    reason = "BadCredentials"
    exit_code = 7

    def __init__(
        self, endpoint: str, bucket: str, code: str, *, rejected: bool, secret: str | None = None
    ) -> None:
        self.endpoint = endpoint
        self.bucket = bucket
        self.code = code
        self.rejected = rejected
        self.secret = secret
        if rejected:
            what = (
                f"the S3 endpoint {endpoint} rejected the credentials ({code}) for bucket {bucket!r}: "
                "the access key id or the secret access key is wrong"
            )
        else:
            what = (
                f"the S3 endpoint {endpoint} denied access to bucket {bucket!r} ({code}): the access "
                "key id or secret access key is wrong, or that user may not read and write the bucket "
                "(grant it, or use other credentials)"
            )
        keys = (
            f"accessKey and secretKey of Secret {secret!r} (credentialsSecret)"
            if secret
            else "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
        super().__init__(f"{what}; fix {keys}" if rejected else f"{what}; the keys are {keys}")


class PromQLDatasetError(TrainingError):
    """Prometheus rejected the dataset's PromQL: permanent until the query is fixed."""

    reason = "PromQLError"
    exit_code = 8


class PrometheusUnavailableError(TrainingError):
    """The dataset's Prometheus could not be reached or answered 5xx: a later pod may succeed."""

    reason = "PrometheusUnavailable"
    exit_code = 9
    retryable = True


class DataQualityError(TrainingError):
    """The dataset quality report exceeds a ``spec.dataset.quality`` threshold: fix the data first.

    Carries the report (JSON-ready, camelCase) so the termination message, and with it the
    TrainingJob's ``status.dataQuality``, says what is wrong with the data.
    """

    reason = "DataQualityFailed"
    exit_code = 10

    def __init__(self, failures: list[str], report: dict[str, Any]) -> None:
        self.failures = failures
        self.report = report
        super().__init__(
            "dataset quality check failed before training: "
            + "; ".join(failures)
            + ": clean the dataset or relax spec.dataset.quality"
        )

    def details(self) -> dict[str, Any]:
        return {"dataQuality": self.report}
