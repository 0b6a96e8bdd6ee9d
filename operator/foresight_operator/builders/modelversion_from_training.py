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

from foresight.api.modelversion import Artifact, Lineage, ModelVersionSpec
from foresight.api.trainingjob import TRAINING_JOB, TrainingJobSpec
from foresight.contract.training import TrainingResult

from ..reconcile.names import NAME_LABEL, child_name, owner_labels
from .modelversion_common import (
    model_version_manifest,
    numeric_metrics,
    promql_dataset,
    version_tag,
)

__all__ = [
    "TRAINING_JOB_LABEL",
    "TRAINING_JOB_UID_ANNOTATION",
    "build_model_version",
    "model_version_name",
    "model_version_tag",
]

Obj = dict[str, Any]
TRAINING_JOB_LABEL = "foresight.dev/training-job"
TRAINING_JOB_UID_ANNOTATION = "foresight.dev/training-job-uid"
_UID_CHARS = 8


def model_version_name(model_name: str, job_name: str, job_uid: str) -> str:
    """``<modelName>-<trainingjob>-<uid[:8]>`` (cut and hashed when longer than 63 characters)."""
    return child_name(f"{model_name}-{job_name}", job_uid.replace("-", "")[:_UID_CHARS])


def model_version_tag(finished: datetime, job_uid: str) -> str:
    """``spec.version``: the completion time (sorts by age) plus the job's uid (unique per job)."""
    return version_tag(finished, job_uid.replace("-", "")[:_UID_CHARS])


def _framework(spec: TrainingJobSpec) -> str:
    # Built-in tasks publish torch modules; what a custom image writes is its own business.
    return "custom" if spec.task == "custom" else "torch"


def _dataset(spec: TrainingJobSpec) -> str | None:
    if spec.dataset is None:
        return None
    if spec.dataset.uri:
        return spec.dataset.uri
    if spec.dataset.promql is not None:
        return promql_dataset(spec.dataset.promql.url, spec.dataset.promql.query)
    return None


def _teacher(spec: TrainingJobSpec) -> str | None:
    # A distilled student's parent is its teacher ModelVersion (lineage.parent names a ModelVersion;
    # a teacher given by URI has none, and the URI stays in the TrainingJob's spec).
    return spec.distillation.teacher.model_version if spec.distillation is not None else None


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
    search), when it can still be read. Raises ``ValueError`` when the TrainingJob has no
    ``spec.output`` (it asked for no ModelVersion).
    """
    meta = trainingjob["metadata"]
    spec = TrainingJobSpec.model_validate(dict(trainingjob.get("spec") or {}))
    if spec.output is None:
        raise ValueError(f"TrainingJob {meta['name']} has no spec.output: it asked for no ModelVersion")
    status: Mapping[str, Any] = trainingjob.get("status") or {}
    doc = result or TrainingResult()
    ns, name, uid = meta["namespace"], meta["name"], meta["uid"]

    # The manifest's checksum covers every file of the model directory; the main file's is the
    # fallback for a runtime that published without a manifest. Both are accepted by verify.
    sha = doc.manifest_sha256 or doc.sha256
    store = spec.artifacts if artifact_uri.startswith("s3://") else None
    metrics = numeric_metrics(doc.metrics or {}) or numeric_metrics(status.get("bestMetrics") or {})
    hyperparameters: dict[str, Any] = dict(spec.hyperparameters)
    best_config = doc.best_config
    if best_config is not None:
        hyperparameters.update({str(k): v for k, v in best_config.items()})
    config: Obj = {
        "task": spec.task,
        "epochs": spec.epochs,
        "seed": spec.seed,
        "hyperparameters": hyperparameters,
        "image": image,
        "backend": spec.distributed.backend,
        "workers": spec.distributed.workers,
    }
    if spec.model:
        config["model"] = spec.model
    if spec.search is not None:
        config["search"] = {
            "metric": spec.search.metric,
            "mode": spec.search.mode,
            "trials": spec.search.trials,
        }
        if best_config is not None:
            config["search"]["bestConfig"] = dict(best_config)

    mv_spec = ModelVersionSpec(
        model_name=spec.output.model_name,
        version=model_version_tag(finished, uid),
        framework=_framework(spec),
        artifact=Artifact(uri=artifact_uri, sha256=str(sha).lower() if sha else None, store=store),
        metrics=metrics,
        config=config,
        lineage=Lineage(training_job=name, dataset=_dataset(spec), parent=_teacher(spec)),
        description=f"trained by TrainingJob {ns}/{name}",
    )
    return model_version_manifest(
        model_version_name(spec.output.model_name, name, uid),
        ns,
        mv_spec,
        # A label value is at most 63 characters: owner_labels cuts and hashes long names.
        labels={TRAINING_JOB_LABEL: owner_labels(TRAINING_JOB.kind, name)[NAME_LABEL]},
        annotations={TRAINING_JOB_UID_ANNOTATION: uid},
    )
