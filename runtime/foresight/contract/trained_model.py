"""The ModelVersion a trained model becomes, wherever the TrainingJob ran.

In a cluster the operator makes it when a TrainingJob succeeds (``builders/modelversion_from_training``);
without one, ``foresight run --local | --hosts`` writes the same object as YAML next to the models
(``foresight.run.training_record``). Both build it here, so a model trained on a laptop and one
trained by a Job look the same in the registry: the same spec fields from the same TrainingJob spec
and result, the same version format, the same labels. What differs is passed in: the object's name
(the operator's is deterministic per job uid), the image (known only to the operator) and where it
was trained. Also the small pieces every ModelVersion builder uses (a ForecastTask's models too).
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from foresight.api.meta import API_VERSION
from foresight.api.modelversion import MODEL_VERSION, Artifact, Lineage, ModelVersionSpec
from foresight.api.trainingjob import TrainingJobSpec

from .training import TrainingResult

__all__ = [
    "MODEL_NAME_LABEL",
    "TRAINING_JOB_LABEL",
    "model_version_object",
    "numeric_metrics",
    "promql_dataset",
    "trained_model_version",
    "version_tag",
]

MODEL_NAME_LABEL = "foresight.dev/model-name"
"""Every ModelVersion carries its model name as a label (``kubectl get mv -l``)."""
TRAINING_JOB_LABEL = "foresight.dev/training-job"
"""The TrainingJob a ModelVersion was trained by."""


def version_tag(when: datetime, token: str) -> str:
    """``spec.version``: a time (sorts by age) plus a short token that makes it unique."""
    return f"{when:%Y%m%d.%H%M%S}-{token}"


def promql_dataset(url: str, query: str) -> str:
    """``spec.lineage.dataset`` of a model trained on a PromQL query."""
    return f"promql+{url}?query={query}"


def numeric_metrics(values: Mapping[str, Any]) -> dict[str, float]:
    """The numeric entries of ``values`` (``spec.metrics`` holds floats; None, text and bools go)."""
    return {
        str(k): float(v) for k, v in values.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }


def model_version_object(
    name: str,
    namespace: str,
    spec: ModelVersionSpec,
    *,
    labels: Mapping[str, str],
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The ModelVersion object: ``spec`` (already validated by pydantic) plus ``labels`` and the model
    name label; ``annotations`` only when given."""
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": {**labels, MODEL_NAME_LABEL: spec.model_name},
    }
    if annotations is not None:
        metadata["annotations"] = dict(annotations)
    return {
        "apiVersion": API_VERSION,
        "kind": MODEL_VERSION.kind,
        "metadata": metadata,
        "spec": spec.to_wire(),
    }


def _dataset(spec: TrainingJobSpec) -> str | None:
    if spec.dataset is None:
        return None
    if spec.dataset.uri:
        return spec.dataset.uri
    if spec.dataset.promql is not None:
        return promql_dataset(spec.dataset.promql.url, spec.dataset.promql.query)
    return None


def _config(
    spec: TrainingJobSpec, result: TrainingResult, *, workers: int, image: str | None, trained_by: str | None
) -> dict[str, Any]:
    """``spec.config``: how the model was trained (a search's best configuration wins)."""
    hyperparameters: dict[str, Any] = dict(spec.hyperparameters)
    if result.best_config is not None:
        hyperparameters.update({str(k): v for k, v in result.best_config.items()})
    config: dict[str, Any] = {
        "task": spec.task,
        "epochs": spec.epochs,
        "seed": spec.seed,
        "hyperparameters": hyperparameters,
        "backend": spec.distributed.backend,
        "workers": workers,
    }
    if image is not None:
        config["image"] = image
    if trained_by is not None:
        config["trainedBy"] = trained_by
    if spec.model:
        config["model"] = spec.model
    if spec.search is not None:
        config["search"] = {
            "metric": spec.search.metric,
            "mode": spec.search.mode,
            "trials": spec.search.trials,
        }
        if result.best_config is not None:
            config["search"]["bestConfig"] = dict(result.best_config)
    return config


def trained_model_version(
    spec: TrainingJobSpec,
    *,
    job: str,
    namespace: str,
    artifact_uri: str,
    version: str,
    result: TrainingResult | None = None,
    fallback_metrics: Mapping[str, Any] | None = None,
    workers: int | None = None,
    image: str | None = None,
    trained_by: str | None = None,
    description: str | None = None,
) -> ModelVersionSpec:
    """The ModelVersion spec of the model TrainingJob ``namespace/job`` (spec ``spec``) trained.

    ``result`` is the training run's result (rank 0's; ``None`` when it can no longer be read):
    its checksum (the manifest's, covering the whole model directory, else the main file's), its
    metrics (else ``fallback_metrics``, e.g. the status' best metrics) and a search's best
    configuration. ``workers`` defaults to the result's world size, then to the spec's.
    Raises ``ValueError`` when the TrainingJob has no ``spec.output`` (it asked for no ModelVersion).
    """
    if spec.output is None:
        raise ValueError(f"TrainingJob {job} has no spec.output: it asked for no ModelVersion")
    doc = result or TrainingResult()
    sha = doc.manifest_sha256 or doc.sha256
    metrics = numeric_metrics(doc.metrics or {}) or numeric_metrics(fallback_metrics or {})
    workers = workers or doc.world_size or spec.distributed.workers
    return ModelVersionSpec(
        model_name=spec.output.model_name,
        version=version,
        # Built-in tasks publish torch modules; what a custom image writes is its own business.
        framework="custom" if spec.task == "custom" else "torch",
        artifact=Artifact(
            uri=artifact_uri,
            sha256=str(sha).lower() if sha else None,
            store=spec.artifacts if artifact_uri.startswith("s3://") else None,
        ),
        metrics=metrics,
        config=_config(spec, doc, workers=workers, image=image, trained_by=trained_by),
        # lineage.parent names a ModelVersion: a teacher given by URI has none (the URI stays in
        # the TrainingJob's spec).
        lineage=Lineage(
            training_job=job,
            dataset=_dataset(spec),
            parent=spec.distillation.teacher.model_version if spec.distillation is not None else None,
        ),
        description=description or f"trained by TrainingJob {namespace}/{job}",
    )
