"""The ModelVersion record of a TrainingJob run outside Kubernetes, kept in the job's artifact store.

In a cluster the operator creates a ModelVersion object when a TrainingJob succeeds. Without a
cluster, ``foresight run --local | --hosts`` writes the same object as YAML into the artifact
store, next to the models: ``<artifacts>/modelversions/<namespace>/<name>.yaml``. It is a valid
ModelVersion (``kubectl apply -f`` it into a cluster that can read the artifact), and a later
local run names it as a distillation teacher (``distillation.teacher.modelVersion``).

Its ``status`` holds what the training run itself measured (a distilled student's comparison
with its teacher); verification and optimisation (checksum, ONNX, latency) are the verify Job's,
which only a cluster runs.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import yaml

from foresight.api.modelversion import Distilled
from foresight.api.trainingjob import TrainingJobSpec
from foresight.artifacts import ArtifactNotFoundError, ArtifactStore
from foresight.contract.trained_model import (
    TRAINING_JOB_LABEL,
    model_version_object,
    trained_model_version,
    version_tag,
)
from foresight.contract.training import TrainingResult

__all__ = ["RECORDS_PREFIX", "find_record", "model_version_record", "read_distillation", "record_key"]

RECORDS_PREFIX = "modelversions"
DISTILLATION_FILE = "distillation.json"  # written by foresight.training.tasks.distill


def record_key(namespace: str, name: str) -> str:
    return f"{RECORDS_PREFIX}/{namespace}/{name}.yaml"


def _name(model_name: str, job: str, token: str) -> str:
    # <modelName>-<job>-<token>, cut to a Kubernetes name's 63 characters (the token always kept).
    stem = f"{model_name}-{job}"[: 63 - len(token) - 1].rstrip("-")
    return f"{stem}-{token}"


def read_distillation(model_store: ArtifactStore) -> dict[str, Any] | None:
    """A distilled student's ``distillation.json`` from its model directory (``None`` otherwise)."""
    try:
        doc = json.loads(model_store.get_bytes(DISTILLATION_FILE))
    except ArtifactNotFoundError:
        return None
    return Distilled.model_validate(doc).to_wire()


def model_version_record(
    spec: TrainingJobSpec,
    *,
    job: str,
    namespace: str,
    result: Mapping[str, Any],
    finished: datetime,
    mode: str,
    distillation: Mapping[str, Any] | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    """The ModelVersion object of a succeeded run (``result`` is rank 0's result line), built by
    the contract as the operator builds it in a cluster."""
    assert spec.output is not None
    token = token or uuid.uuid4().hex[:8]
    mv = trained_model_version(
        spec,
        job=job,
        namespace=namespace,
        artifact_uri=str(result["artifactUri"]),
        version=version_tag(finished, token),
        result=TrainingResult.model_validate(dict(result)),
        trained_by=mode,
        description=f"trained by TrainingJob {namespace}/{job} ({mode}, without Kubernetes)",
    )
    doc = model_version_object(
        _name(spec.output.model_name, job, token), namespace, mv, labels={TRAINING_JOB_LABEL: job[:63]}
    )
    if distillation:
        doc["status"] = {"distillation": dict(distillation)}
    return doc


def write_record(store: ArtifactStore, record: Mapping[str, Any]) -> str:
    """Store the record; returns its URI."""
    meta = record["metadata"]
    key = record_key(meta["namespace"], meta["name"])
    return str(store.put_bytes(yaml.safe_dump(dict(record), sort_keys=False).encode(), key).uri)


def find_record(store: ArtifactStore, namespace: str, name: str) -> dict[str, Any] | None:
    """The record of ModelVersion ``namespace/name`` in ``store`` (``None`` when there is none)."""
    try:
        doc = yaml.safe_load(store.get_bytes(record_key(namespace, name)))
    except ArtifactNotFoundError:
        return None
    return doc if isinstance(doc, dict) else None
