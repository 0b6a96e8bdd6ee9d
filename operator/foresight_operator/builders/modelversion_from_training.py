"""``build_model_version``: a finished TrainingJob -> the ModelVersion of the model it trained.

Pure: the TrainingJob (spec, metadata, status) and the training pod's result
(:class:`~foresight.contract.training.TrainingResult`) in,
the ModelVersion manifest out, built through :class:`~foresight.api.modelversion.ModelVersionSpec`
so it is valid before it reaches the API.

The ModelVersion is *not* owned by the TrainingJob: the trained model is the result users keep,
and deleting the job that produced it (or its ``ttlSecondsAfterFinished`` clean-up) must not
delete the model. It is tied to the job by labels and ``spec.lineage`` instead.

Its name is deterministic (model name, job name, start of the job's uid), so a second handler
run or an operator restart finds the ModelVersion made before instead of making another, and a
TrainingJob deleted and re-created under the same name makes a new one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from foresight.api.trainingjob import TRAINING_JOB, TrainingJobSpec
from foresight.contract.trained_model import TRAINING_JOB_LABEL, trained_model_version, version_tag
from foresight.contract.training import TrainingResult

from ..reconcile.names import NAME_LABEL, child_name, owner_labels
from .modelversion_common import model_version_manifest

__all__ = [
    "TRAINING_JOB_LABEL",
    "TRAINING_JOB_UID_ANNOTATION",
    "build_model_version",
    "model_version_name",
    "model_version_tag",
]

Obj = dict[str, Any]
TRAINING_JOB_UID_ANNOTATION = "foresight.dev/training-job-uid"
_UID_CHARS = 8


def model_version_name(model_name: str, job_name: str, job_uid: str) -> str:
    """``<modelName>-<trainingjob>-<uid[:8]>`` (cut and hashed when longer than 63 characters)."""
    return child_name(f"{model_name}-{job_name}", job_uid.replace("-", "")[:_UID_CHARS])


def model_version_tag(finished: datetime, job_uid: str) -> str:
    """``spec.version``: the completion time (sorts by age) plus the job's uid (unique per job)."""
    return version_tag(finished, job_uid.replace("-", "")[:_UID_CHARS])


def build_model_version(
    trainingjob: Mapping[str, Any],
    *,
    artifact_uri: str,
    finished: datetime,
    image: str,
    result: TrainingResult | None = None,
) -> Obj:
    """The ModelVersion manifest for a Succeeded TrainingJob.

    ``artifact_uri`` is the trained model (``status.artifactUri``), ``finished`` the job's
    completion time, ``image`` the image that trained it, and ``result`` the training pod's
    termination message (``sha256`` / ``manifestSha256``, ``metrics``, ``bestConfig`` of a
    search), when it can still be read; without it the status' best metrics stand in. The spec is
    the contract's (:func:`foresight.contract.trained_model.trained_model_version`, shared with
    ``foresight run``). Raises ``ValueError`` when the TrainingJob has no ``spec.output`` (it asked
    for no ModelVersion).
    """
    meta = trainingjob["metadata"]
    spec = TrainingJobSpec.model_validate(dict(trainingjob.get("spec") or {}))
    status: Mapping[str, Any] = trainingjob.get("status") or {}
    ns, name, uid = meta["namespace"], meta["name"], meta["uid"]
    mv_spec = trained_model_version(
        spec,
        job=name,
        namespace=ns,
        artifact_uri=artifact_uri,
        version=model_version_tag(finished, uid),
        result=result,
        fallback_metrics=status.get("bestMetrics") or {},
        workers=spec.distributed.workers,
        image=image,
    )
    assert spec.output is not None  # trained_model_version refuses a spec without one
    return model_version_manifest(
        model_version_name(spec.output.model_name, name, uid),
        ns,
        mv_spec,
        # A label value is at most 63 characters: owner_labels cuts and hashes long names.
        labels={TRAINING_JOB_LABEL: owner_labels(TRAINING_JOB.kind, name)[NAME_LABEL]},
        annotations={TRAINING_JOB_UID_ANNOTATION: uid},
    )
